"""The compiled chunk programs of a run, shared with later runs that differ only in array values.

``jax.jit`` caches compiled code per Python function, and every ``fit`` or ``sweep`` call builds
new functions (its optimizer, its engine spec), so on its own each call would compile its
programs again — even when all that changed is a learning rate passed as an array. Here each
program is traced once per call to a jaxpr; the arrays it closes over (an optimizer's learning
rate, a table the loss reads) become arguments of the compiled program instead of constants
baked into it, and the lowered StableHLO text, which then no longer holds their values, is the
cache key. A later call whose program lowers to the same text, for arguments of the same types
and shardings, runs the executable already compiled. Python numbers stay constants in the
program, so changing one compiles anew; a program that calls back into Python (callbacks,
``jax.debug.print``) is never shared.

Only the first call of a program in a run does this work; each chunk after that is one call of
the compiled program.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import jax.extend

from gdjax.train.epoch import EngineSpec, run_chunk

#: How many compiled programs are kept for later runs (least recently used are dropped).
MAX_CACHED = 16

#: Primitives whose function parameters are derivative rules, unused when the program runs.
_DERIVATIVE_RULES = ("custom_jvp_call", "custom_vjp_call")

#: Callable parameter values that are data, not code (a mesh is a context decorator).
_NOT_CODE = (jax.sharding.Mesh, jax.sharding.AbstractMesh, jax.sharding.Sharding, type)

_cache: OrderedDict[tuple, Callable[..., Any]] = OrderedDict()
_lock = threading.Lock()


def _signature(x: Any) -> tuple:
    """What a compiled program is specialised to: type (weak type included) and placement."""
    return (jax.typeof(x), getattr(x, "sharding", None))


def _runs_host_code(jaxpr: jax.extend.core.Jaxpr) -> bool:
    """Whether a program calls back into Python (callbacks, ``jax.debug.print``).

    Such a program may lower to the same text as one with another callback, so it is never
    shared. A callback shows as an effect or as a function among an equation's parameters;
    custom derivative rules are functions too, but they are not run (the program is not
    differentiated again), so they do not count.
    """
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


def _shared(key: tuple, jitted: Callable[..., Any]) -> Callable[..., Any]:
    """The cached program for ``key``, or ``jitted`` after caching it."""
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        _cache[key] = jitted
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
        return jitted


def clear_cache() -> None:
    """Forget every compiled program kept for later runs."""
    with _lock:
        _cache.clear()


class Program:
    """One compiled chunk program; call it with ``(state, *rest)`` — ``state`` is donated.

    Args:
        fn: The pure function ``(state, *rest) -> (state, stats)`` to compile.
        place: Puts the arrays ``fn`` closes over where the arguments live.
    """

    def __init__(self, fn: Callable[..., Any], place: Callable[[list], list]) -> None:
        self._fn = fn
        self._place = place
        self._run: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        """Run the program (tracing and compiling it, or finding it compiled, on first use)."""
        self.prepare(*args)
        return self._run(*args)

    def prepare(self, *args: Any) -> None:
        """Trace and lower the program for arguments like ``args`` (not run; nothing donated).

        This is the work of a first call that happens in Python; ``fit`` and ``sweep`` do it
        before the first epoch's clock starts, so that a program found compiled costs that
        epoch nothing. (A program compiled for the first time is compiled by XLA on its first
        run.)
        """
        if self._run is None:
            self._run = self._build(args)

    def _build(self, args: tuple) -> Callable[..., Any]:
        closed, out_shape = jax.make_jaxpr(self._fn, return_shape=True)(*args)
        jaxpr, out_tree = closed.jaxpr, jax.tree.structure(out_shape)
        consts = self._place(list(closed.consts))
        n_consts, n_state = len(consts), len(jax.tree.leaves(args[0]))

        def train_chunk(*flat: Any) -> list:
            return jax.core.eval_jaxpr(jaxpr, flat[:n_consts], *flat[n_consts:])

        jitted = jax.jit(train_chunk, donate_argnums=tuple(range(n_consts, n_consts + n_state)))
        if not _runs_host_code(jaxpr):
            flat = [*consts, *jax.tree.leaves(args)]
            text = jitted.lower(*flat).as_text()
            key = (
                hashlib.sha256(text.encode()).hexdigest(),
                n_consts,
                n_state,
                tuple(_signature(x) for x in flat),
            )
            jitted = _shared(key, jitted)

        def run(*args: Any) -> Any:
            return jax.tree.unflatten(out_tree, jitted(*consts, *jax.tree.leaves(args)))

        return run


class Programs:
    """The chunk programs of one run, one per ``(num_full, finish)``.

    Args:
        spec: The run's static description.
        wrap: Turns ``run_chunk`` into the function to compile (``sweep`` vmaps it).
        place: Puts arrays that the programs close over next to the data (default: the
            default device).
    """

    def __init__(
        self,
        spec: EngineSpec,
        wrap: Callable[[Callable], Callable] | None = None,
        place: Callable[[list], list] | None = None,
    ) -> None:
        self.spec = spec
        self._wrap = wrap
        self._place = place or jax.device_put
        self._cache: dict[tuple[int, bool], Program] = {}

    def __call__(self, num_full: int, finish: bool) -> Program:
        """The program ``(state, key, hp, data, val_data[, clock]) -> (state, stats)``."""
        if (num_full, finish) not in self._cache:
            fn = functools.partial(run_chunk, self.spec, num_full, finish)
            if self._wrap is not None:
                fn = self._wrap(fn)
            self._cache[(num_full, finish)] = Program(fn, self._place)
        return self._cache[(num_full, finish)]
