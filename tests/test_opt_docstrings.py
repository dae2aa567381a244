"""The update rules in the optimizer docstrings render as math, not as code blocks.

mkdocstrings renders docstrings as Markdown with arithmatex: a formula must sit wholly inside a
``$$ ... $$`` block (or inline ``$...$``). A formula line left after the closing ``$$`` and
indented becomes a code block. This scans the docstring of every public optimizer,
transformation, state and schedule, and of their modules.
"""

import importlib
import inspect
import pkgutil
import re

import pytest

import gdjax
from gdjax import base, schedules, tree_utils


def _package_modules(package) -> list:
    """The package and every module in it (new family modules are scanned without a list)."""
    names = [info.name for info in pkgutil.iter_modules(package.__path__, package.__name__ + ".")]
    return [package, *(importlib.import_module(name) for name in sorted(names))]


MODULES = [
    base,
    tree_utils,
    schedules,
    *_package_modules(gdjax.optimizers),
    *_package_modules(gdjax.transforms),
]
SECTION = re.compile(r"^(Args|Arguments|Returns|Raises|Examples|Attributes|Note|Notes):\s*$")
TEX_COMMAND = re.compile(r"\\[A-Za-z]+")
INLINE_MATH = re.compile(r"\$[^$]+\$")
CODE_SPAN = re.compile(r"``.*?``|`[^`]*`")


def _documented():
    seen = {}
    for module in MODULES:
        seen[module.__name__] = module
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                seen[f"{module.__name__}.{name}"] = obj
    return seen


DOCUMENTED = _documented()


def math_problems(doc: str) -> list[str]:
    """Lines of a docstring whose math would not render as math."""
    problems = []
    in_block = False
    in_sections = False
    literal_indent = None  # inside an intended literal block, opened by a line ending in "::"
    paragraph_dollars = 0
    for number, raw in enumerate(inspect.cleandoc(doc).splitlines(), 1):
        line = raw.strip()
        if line == "$$":
            in_block = not in_block
            continue
        if "$$" in line:
            problems.append(f"line {number}: '$$' must stand on its own line: {line!r}")
            continue
        if in_block:
            if not line:
                problems.append(f"line {number}: blank line inside a $$ block ends it early")
            continue
        indent = len(raw) - len(raw.lstrip())
        if literal_indent is not None:
            if not line or indent > literal_indent:
                continue
            literal_indent = None
        if line.endswith("::"):
            literal_indent = indent
        if SECTION.match(line):
            in_sections = True
        if line.startswith((">>>", "...")):
            continue
        if not line:
            if paragraph_dollars % 2:
                problems.append(f"before line {number}: unbalanced '$' in the paragraph")
            paragraph_dollars = 0
            continue
        paragraph_dollars += line.count("$")
        outside = INLINE_MATH.sub("", CODE_SPAN.sub("", line))
        if TEX_COMMAND.search(outside) and line.count("$") % 2 == 0:
            problems.append(f"line {number}: TeX outside any math block: {line!r}")
        # An indented line in the description (before Args:/Examples:...) is a code block.
        if not in_sections and indent >= 4:
            problems.append(f"line {number}: indented text renders as a code block: {line!r}")
    if in_block:
        problems.append("a $$ block is never closed")
    if paragraph_dollars % 2:
        problems.append("unbalanced '$' in the last paragraph")
    return problems


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_docstring_math_is_inside_math_blocks(name):
    doc = DOCUMENTED[name].__doc__
    assert doc, f"{name} has no docstring"
    assert math_problems(doc) == []


def test_every_public_name_is_scanned():
    public = set(gdjax.optimizers.__all__) | set(gdjax.transforms.__all__)
    public |= set(gdjax.schedules.__all__)
    scanned = {name.rsplit(".", 1)[-1] for name in DOCUMENTED}
    assert public <= scanned, sorted(public - scanned)


BROKEN = r"""Nesterov.

$$
v_t = \beta v_{t-1} + g_t, \qquad
$$

           \theta_{t+1} = \theta_t - v_t

Args:
    beta: $\beta$.
"""


def test_the_check_catches_a_formula_left_outside_its_block():
    problems = math_problems(BROKEN)
    assert any("TeX outside any math block" in p for p in problems)
    assert any("renders as a code block" in p for p in problems)
    fixed = BROKEN.replace("$$\n\n           \\theta", "\\theta").replace(
        "v_t\n\nArgs", "v_t\n$$\n\nArgs"
    )
    assert math_problems(fixed) == []
