"""Shared fixtures: scratch portfolios written from strings, and the example portfolio."""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from custsite.build import CheckResult, check
from custsite.cli import main

REPO = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 6, 1)

ScratchFactory = Callable[[dict[str, str | bytes]], Path]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/ from the current output")


@pytest.fixture(scope="session", autouse=True)
def own_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The key that signs kept records (see cache.RecordStore) is made in a folder of the
    tests, never in the home folder of whoever runs them."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))
    yield
    if before is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture
def scratch_portfolio(tmp_path: Path) -> ScratchFactory:
    """Write a small portfolio from {relative path: text}; text is dedented."""

    def make(files: dict[str, str | bytes]) -> Path:
        for rel, text in files.items():
            target = tmp_path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(text, bytes):
                target.write_bytes(text)
            else:
                target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return tmp_path

    return make


@pytest.fixture
def checked(scratch_portfolio: ScratchFactory) -> Callable[..., CheckResult]:
    """Write a scratch portfolio and check it at AS_OF."""

    def run(files: dict[str, str | bytes], as_of: dt.date = AS_OF) -> CheckResult:
        return check(scratch_portfolio(files), as_of=as_of)

    return run


def run(*args: str, root: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """The CLI through click's runner, optionally on the portfolio in `root`."""
    argv = ["-C", str(root)] if root else []
    return CliRunner().invoke(main, [*argv, *args], env=env)


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example portfolio built once into a temporary folder."""
    out = tmp_path_factory.mktemp("example") / "site"
    result = run("build", "-o", str(out), root=REPO)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def example() -> CheckResult:
    """The example portfolio at the repository root, checked once."""
    return check(REPO)
