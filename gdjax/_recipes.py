"""Recipes: how a gdjax optimizer or schedule was built, so its numbers can be program inputs.

Every public factory of gdjax (``gdjax.adam``, ``gdjax.scale_by_learning_rate``,
``gdjax.schedules.cosine_decay_schedule``, ``gdjax.chain``, ...) records the arguments it was
called with. :func:`split` turns a recorded object into

- a hashable *key*: the factories and every argument that changes the program (ints, bools,
  strings, masks, functions, the recipes of nested transformations and schedules), and
- its *numbers*: the floating-point arguments (Python floats and JAX arrays), as a list of
  leaves, with a function that rebuilds the object from other numbers of the same types.

The training engine keys its compiled programs on the key and passes the numbers as
arguments, so ``gdjax.adam(3e-4)`` after ``gdjax.adam(1e-3)`` finds the program compiled for
the first without tracing anything. Objects built by other libraries (optax's own optimizers,
a user's function) have no recipe: :func:`split` keys them by identity and gives no numbers.

Python floats become weakly typed scalars (``jnp.asarray(x)``), so inside the program they
combine with bfloat16 or float16 arrays exactly as the Python float would.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax


@dataclass(frozen=True)
class Recipe:
    """A factory and the arguments of one call of it."""

    factory: Callable[..., Any]  # the undecorated factory
    args: tuple
    kwargs: tuple[tuple[str, Any], ...]


# id(function) -> (weak reference to the function, recipe). Transformations are keyed by their
# ``update`` function (NamedTuples cannot be weakly referenced), schedules by themselves.
_RECIPES: dict[int, tuple[weakref.ref, Recipe]] = {}


def _anchor(obj: Any) -> Any:
    return obj.update if isinstance(obj, optax.GradientTransformation) else obj


def _remember(obj: Any, recipe: Recipe) -> None:
    anchor = _anchor(obj)
    if not callable(anchor):
        return
    key = id(anchor)
    try:
        ref = weakref.ref(anchor, lambda _, key=key: _RECIPES.pop(key, None))
    except TypeError:  # not weakly referenceable (a builtin): no recipe
        return
    _RECIPES[key] = (ref, recipe)


def recipe_of(obj: Any) -> Recipe | None:
    """The recipe recorded for ``obj``, or ``None`` if it was not built by a recorded factory."""
    anchor = _anchor(obj)
    entry = _RECIPES.get(id(anchor))
    if entry is None or entry[0]() is not anchor:
        return None
    return entry[1]


def recorded(factory: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a factory so that what it returns remembers the call (see :func:`split`)."""

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Any:
        out = factory(*args, **kwargs)
        _remember(out, Recipe(factory, args, tuple(sorted(kwargs.items()))))
        return out

    build.__gdjax_recipe_factory__ = factory  # type: ignore[attr-defined]
    return build


def record_module(module: Any, names: list[str]) -> None:
    """Replace each public factory ``module.<name>`` by its recorded version (once; aliases
    of one factory, such as ``multi_transform`` and ``partition``, stay one object)."""
    for name in names:
        obj = getattr(module, name)
        if (
            callable(obj)
            and not isinstance(obj, type)
            and not hasattr(obj, "__gdjax_recipe_factory__")
        ):
            if id(obj) not in _RECORDED:
                _RECORDED[id(obj)] = (obj, recorded(obj))
            setattr(module, name, _RECORDED[id(obj)][1])


# id of a factory -> (the factory, kept alive; its recorded version)
_RECORDED: dict[int, tuple[Callable, Callable]] = {}


class Opaque:
    """Part of a key that stands for one object, compared by identity (kept alive by the key)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __repr__(self) -> str:
        return f"<{getattr(self.obj, '__qualname__', type(self.obj).__name__)}>"


def _is_number(x: Any) -> bool:
    if isinstance(x, bool | np.bool_):
        return False
    if isinstance(x, float | np.floating):
        return True
    return isinstance(x, jax.Array | np.ndarray) and jnp.issubdtype(x.dtype, jnp.floating)


def _number_type(x: Any) -> tuple:
    if isinstance(x, float):
        return ("float",)
    return ("array", tuple(x.shape), str(x.dtype), bool(getattr(x, "weak_type", False)))


def _static(x: Any) -> Any:
    """A hashable stand-in for a static argument: itself if hashable, else its identity."""
    if callable(x):
        return Opaque(x)
    try:
        hash(x)
        return x
    except TypeError:
        leaves, treedef = jax.tree.flatten(x)
        try:
            hash(tuple(leaves))
        except TypeError:
            return Opaque(x)
        return ("tree", treedef, tuple(leaves))


@dataclass(frozen=True)
class Split:
    """An object as a program sees it: a key, its numbers, and how to rebuild it from numbers."""

    key: Any
    numbers: list
    rebuild: Callable[[list], Any]


def split(obj: Any) -> Split:
    """Split ``obj`` into its key and numbers (see the module docstring).

    Examples:
        >>> import gdjax
        >>> from gdjax._recipes import split
        >>> a, b = split(gdjax.adam(1e-3)), split(gdjax.adam(3e-4))
        >>> a.key == b.key, a.numbers[0], b.numbers[0]
        (True, 0.001, 0.0003)
    """
    recipe = recipe_of(obj)
    if recipe is None:
        return Split(("object", Opaque(_anchor(obj))), [], lambda _: obj)
    parts = [_split_arg(a) for a in recipe.args]
    kw_parts = [(k, _split_arg(v)) for k, v in recipe.kwargs]
    key = (
        "recipe",
        Opaque(recipe.factory),
        tuple(p.key for p in parts),
        tuple((k, p.key) for k, p in kw_parts),
    )
    numbers = [n for p in parts for n in p.numbers] + [n for _, p in kw_parts for n in p.numbers]
    sizes = [len(p.numbers) for p in parts] + [len(p.numbers) for _, p in kw_parts]

    def rebuild(values: list) -> Any:
        pieces, at = [], 0
        for p, size in zip([*parts, *(p for _, p in kw_parts)], sizes, strict=True):
            pieces.append(p.rebuild(values[at : at + size]))
            at += size
        args = pieces[: len(parts)]
        kwargs = {k: v for (k, _), v in zip(kw_parts, pieces[len(parts) :], strict=True)}
        return recipe.factory(*args, **kwargs)

    return Split(key, numbers, rebuild)


def _split_arg(x: Any) -> Split:
    if _is_number(x):
        return Split(("number", *_number_type(x)), [x], lambda v: v[0])
    if recipe_of(x) is not None:
        return split(x)
    if isinstance(x, tuple | list) and any(_is_number(e) or recipe_of(e) is not None for e in x):
        parts = [_split_arg(e) for e in x]
        sizes = [len(p.numbers) for p in parts]
        kind = type(x)

        def rebuild(values: list) -> Any:
            out, at = [], 0
            for p, size in zip(parts, sizes, strict=True):
                out.append(p.rebuild(values[at : at + size]))
                at += size
            return kind(out)

        return Split(
            ("seq", kind.__name__, tuple(p.key for p in parts)),
            [n for p in parts for n in p.numbers],
            rebuild,
        )
    return Split(("static", _static(x)), [], lambda _: x)


def as_inputs(numbers: list) -> list:
    """The numbers as program inputs: Python floats become weakly typed scalar arrays."""
    # device_put, not jnp.asarray: the same weakly typed scalar without compiling a program
    return [jax.device_put(x) if isinstance(x, float) else x for x in numbers]
