"""The documentation site builds without warnings, and its generated figures are reproducible.

Code blocks in ``docs/*.md``, ``README.md`` and docstrings run as tests themselves
(pytest-markdown-docs and doctest, configured in ``pyproject.toml``).
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_builds_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "optimizers" / "schedules" / "index.html").exists()
    api = (tmp_path / "site" / "api" / "optimizers" / "index.html").read_text()
    assert "scale_by_adam" in api and "arithmatex" in api  # docstrings and their math rendered


def test_schedule_plots_are_generated_for_every_documented_schedule(tmp_path):
    sys.path.insert(0, str(ROOT / "docs" / "scripts"))
    try:
        import plot_schedules
    finally:
        sys.path.pop(0)
    written = plot_schedules.plot_all(tmp_path)
    page = (ROOT / "docs" / "optimizers" / "schedules.md").read_text()
    for path in written:
        assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
        assert f"img/schedules/{path.name}" in page
        assert (ROOT / "docs" / "img" / "schedules" / path.name).exists()
    import gdjax.schedules

    assert {p.stem for p in written} == set(gdjax.schedules.__all__)
