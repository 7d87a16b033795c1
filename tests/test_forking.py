"""forked_map: the work split among forked processes comes back whole, in order, and any
failure of a forked process is raised here, never waited on forever."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from custsite.errors import CustsiteError
from custsite.forking import can_fork, forked_map

pytestmark = pytest.mark.skipif(not can_fork(), reason="needs the fork start method")


def _double(n: int) -> tuple[int, int]:
    return n * 2, os.getpid()


@pytest.mark.parametrize("jobs", [2, 3])
def test_results_come_back_in_order_from_every_process(jobs: int) -> None:
    items = list(range(2_000))
    found = forked_map(_double, items, jobs, cost=lambda n: 1)
    assert [value for value, _ in found] == [n * 2 for n in items]
    assert len({pid for _, pid in found}) == jobs
    assert found[0][1] == os.getpid()  # this process takes the first share


def test_large_results_do_not_stall_the_processes() -> None:
    """Results far larger than a pipe holds, sent while this process is still at work."""
    big = forked_map(lambda n: bytes([n % 256]) * 200_000, list(range(300)), 2,
                     cost=lambda n: 1)
    assert [b[0] for b in big] == [n % 256 for n in range(300)]
    assert all(len(b) == 200_000 for b in big)


def _report(n: int) -> int:
    if n == 999:
        raise CustsiteError("record 999 cannot be read")
    return n


def _crash(n: int) -> int:
    if n == 999:
        os._exit(3)
    return n


def _bug(n: int) -> int:
    if n == 999:
        raise ZeroDivisionError("bug")
    return n


@pytest.mark.parametrize(("func", "raised", "message"), [
    (_report, CustsiteError, "record 999 cannot be read"),  # a problem reported as it is
    (_crash, CustsiteError, "ended unexpectedly"),  # never waited on forever
    (_bug, RuntimeError, "ZeroDivisionError"),  # with the forked process's traceback
])
def test_a_failure_in_a_forked_process_is_raised_here(
        func: Callable[[int], int], raised: type[Exception], message: str) -> None:
    """Item 999 is in the forked process's share."""
    with pytest.raises(raised, match=message):
        forked_map(func, list(range(1_000)), 2, cost=lambda n: 1)
