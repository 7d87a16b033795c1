"""Golden output: the site of a small portfolio, compared file by file.

After a deliberate change to the pages, run `pytest --update-golden` and review the diff.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from custsite.build import build

HERE = Path(__file__).parent
SMALL = HERE / "fixtures" / "small"
GOLDEN = HERE / "golden" / "small"


def _files(folder: Path) -> dict[str, bytes]:
    """Every generated file but the theme's static assets, which are copied verbatim."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.relative_to(folder).as_posix().startswith("static/")}


def test_small_site_matches_golden(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # Built from a copy outside the repository: git's "last changed" would move with commits.
    source = tmp_path / "small"
    shutil.copytree(SMALL, source)
    out = tmp_path / "site"
    build(source, output=out)
    if request.config.getoption("--update-golden"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(out, GOLDEN, ignore=lambda d, names: ["static"] if Path(d) == out
                        else [])
    expected, actual = _files(GOLDEN), _files(out)
    assert sorted(actual) == sorted(expected)
    for name, data in expected.items():
        assert actual[name].decode() == data.decode(), name
