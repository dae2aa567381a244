"""The compiled programs of a run, built once and kept for every later call that needs them.

A run needs four programs: ``init`` (a fresh training state), ``order`` (an epoch's order of
the examples), ``steps`` (a chunk of full-batch steps) and ``end`` (the remainder batch and
the end of an epoch); and, only if a non-finite step ever shows up, ``steps_guarded`` and
``end_guarded`` (the same with every step checked; see :mod:`gdjax.train.step`).
:class:`Programs` holds them for one :class:`~gdjax.train.spec.Spec`.

Finding them for a call costs next to nothing when nothing changed:

1. **Cheap key.** :func:`programs_for` looks the programs up by the spec (loss functions and
   optimizer compared by identity, or by recipe for gdjax optimizers) and the shapes and dtypes
   of the inputs. A hit runs the compiled executables directly: no tracing, no lowering.
2. **Structural key.** On a miss each program is traced to a jaxpr, the arrays it closes over
   become inputs rather than constants, and the lowered program's text (which no longer holds
   their values) is hashed. A program that lowers to the same text for inputs of the same
   types runs the executable already compiled — a recreated ``lambda`` or a new ``optax.adam``
   with the same numbers costs a trace, not a compilation. Programs that call back into Python
   (callbacks, ``jax.debug.print``) are never shared this way.
3. **XLA.** Otherwise the program is compiled, on a background thread: the steps and end
   programs (and the small init program) compile at the same time. JAX's persistent
   compilation cache (:func:`set_cache_dir`, on by default) lets a new process load what an
   earlier one compiled.

As with ``jax.jit``, a hit on the cheap key means the functions are not traced again: a loss
that reads a global variable changed between calls sees the value it was first traced with.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.extend

#: How many runs' programs are kept (least recently used are dropped).
MAX_CACHED = 16

#: XLA options of every program: XLA's defaults. (Compiling the small programs without LLVM's
#: optimizations halved their compile time, but -O0 changed results elsewhere — with XLA:CPU's
#: legacy emitters it miscompiled a float64 convolution gradient, and alone a batch-norm CNN
#: stopped fitting a tiny batch in the tests — so no program is compiled that way.)
COMPILER_OPTIONS: dict = {}

#: Primitives whose function parameters are derivative rules, unused when the program runs.
_DERIVATIVE_RULES = ("custom_jvp_call", "custom_vjp_call")
#: Callable parameter values that are data, not code (a mesh is a context decorator).
_NOT_CODE = (jax.sharding.Mesh, jax.sharding.AbstractMesh, jax.sharding.Sharding, type)

_lock = threading.Lock()
_by_key: OrderedDict[Any, Programs] = OrderedDict()
_by_text: OrderedDict[tuple, Any] = OrderedDict()
_compiler = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="gdjax-xla")


def clear_cache() -> None:
    """Forget every compiled program kept for later runs."""
    with _lock:
        _by_key.clear()
        _by_text.clear()


def _runs_host_code(jaxpr: jax.extend.core.Jaxpr) -> bool:
    """Whether a program calls back into Python (callbacks, ``jax.debug.print``)."""
    for eqn in jaxpr.eqns:
        if eqn.effects:
            return True
        for value in eqn.params.values():
            for v in value if isinstance(value, tuple | list) else (value,):
                if isinstance(v, jax.extend.core.ClosedJaxpr):
                    v = v.jaxpr
                if isinstance(v, jax.extend.core.Jaxpr):
                    if _runs_host_code(v):
                        return True
                elif (
                    callable(v)
                    and not isinstance(v, _NOT_CODE)
                    and eqn.primitive.name not in _DERIVATIVE_RULES
                ):
                    return True
    return False


def _signature(x: Any) -> tuple:
    return (jax.typeof(x), getattr(x, "sharding", None))


class Executable:
    """One compiled program: call it with the arguments it was built for."""

    def __init__(
        self, future: concurrent.futures.Future, consts: list, out_tree: Any, name: str
    ) -> None:
        self._future = future
        self._consts = consts
        self._out_tree = out_tree
        self.name = name

    def ready(self) -> Executable:
        """Wait for the compilation (re-raising its error) and return ``self``."""
        self._future.result()
        return self

    def __call__(self, *args: Any) -> Any:
        flat = self._future.result()(*self._consts, *jax.tree.leaves(args))
        return jax.tree.unflatten(self._out_tree, flat)


def build(
    fn: Callable[..., Any],
    args: tuple,
    *,
    name: str,
    donate_first: bool,
    place: Callable[[list], list],
    options: dict | None = None,
) -> Executable:
    """Trace ``fn`` for arguments like ``args`` (abstract or concrete) and start compiling it.

    The arrays ``fn`` closes over become inputs (put where ``place`` says); ``args[0]``'s
    buffers are donated if ``donate_first``; ``options`` are XLA compiler options. Compilation
    runs on a background thread.
    """
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    jaxpr, out_tree = closed.jaxpr, jax.tree.structure(out_shape)
    consts = place(list(closed.consts))
    n_consts = len(consts)
    n_first = len(jax.tree.leaves(args[0])) if donate_first else 0

    def program(*flat: Any) -> list:
        return jax.core.eval_jaxpr(jaxpr, flat[:n_consts], *flat[n_consts:])

    program.__name__ = name
    jitted = jax.jit(program, donate_argnums=tuple(range(n_consts, n_consts + n_first)))
    flat_args = [*consts, *jax.tree.leaves(args)]
    lowered = jitted.lower(*flat_args)
    key = None
    if not _runs_host_code(jaxpr):
        text = lowered.as_text()
        key = (
            hashlib.sha256(text.encode()).hexdigest(),
            n_consts,
            n_first,
            tuple(_signature(x) for x in flat_args),
            tuple(sorted((options or {}).items())),
        )
        with _lock:
            if key in _by_text:
                _by_text.move_to_end(key)
                return Executable(_by_text[key], consts, out_tree, name)
    future = _compiler.submit(lowered.compile, options)
    if key is not None:
        with _lock:
            _by_text[key] = future
            while len(_by_text) > 4 * MAX_CACHED:
                _by_text.popitem(last=False)
    return Executable(future, consts, out_tree, name)


class Programs:
    """The programs of one run shape, built on first use and kept for later calls.

    Args:
        spec: The run's static description (kept for later calls with the same key).
        make: ``name -> (fn, args, donate_first)`` for ``init``, ``order``, ``steps``,
            ``steps_guarded``, ``end`` and ``end_guarded``: the function to compile and
            arguments like the ones it will get.
        place: Puts arrays the programs close over where their inputs live.
    """

    def __init__(
        self, spec: Any, make: Callable[[str], tuple], place: Callable[[list], list]
    ) -> None:
        self.spec = spec
        self._make = make
        self._place = place
        self._built: dict[str, Executable] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Executable:
        """The program ``name``, traced and submitted for compilation on first use."""
        with self._lock:
            if name not in self._built:
                fn, args, donate_first = self._make(name)
                self._built[name] = build(
                    fn,
                    args,
                    name=f"gdjax_{name}",
                    donate_first=donate_first,
                    place=self._place,
                    options=COMPILER_OPTIONS,
                )
            return self._built[name]

    def has(self, name: str) -> bool:
        """Whether ``name`` was built already."""
        return name in self._built


def programs_for(key: Any, create: Callable[[], Programs]) -> tuple[Programs, bool]:
    """The programs cached under ``key`` (and ``True``), or ``create()``'s, kept there."""
    with _lock:
        if key in _by_key:
            _by_key.move_to_end(key)
            return _by_key[key], True
    programs = create()  # outside the lock: it checks arguments and traces the loss
    with _lock:
        _by_key[key] = programs
        while len(_by_key) > MAX_CACHED:
            _by_key.popitem(last=False)
        return programs, False


def set_cache_dir(directory: str | os.PathLike | None) -> None:
    """Use ``directory`` for JAX's persistent compilation cache (``None``: turn it off).

    gdjax turns the cache on when it is imported, in ``~/.cache/gdjax/jax`` (or the directory
    named by the environment variable ``GDJAX_COMPILATION_CACHE``; set it to ``off`` to leave
    JAX's setting alone), unless JAX's own ``jax_compilation_cache_dir`` is already set. Then a
    new process with the same shapes loads its programs instead of compiling them. Programs
    that take less than 0.2 s to compile are not written.
    """
    if directory is None:
        jax.config.update("jax_compilation_cache_dir", None)
        return
    path = Path(directory).expanduser()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def enable_default_cache() -> None:
    """Turn on the persistent compilation cache as :func:`set_cache_dir` describes."""
    choice = os.environ.get("GDJAX_COMPILATION_CACHE", "")
    if choice.lower() in ("off", "0", "false", "no") or jax.config.jax_compilation_cache_dir:
        return
    directory = choice or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "gdjax" / "jax"
    with contextlib.suppress(OSError):  # an unwritable home: run without the cache
        set_cache_dir(directory)
