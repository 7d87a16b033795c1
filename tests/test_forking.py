"""forked_map: the work split among forked processes comes back whole, in order, and any
failure of a forked process is raised here, never waited on forever."""

from __future__ import annotations

import os

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


def test_a_failure_in_a_forked_process_is_raised_here() -> None:
    def fail_last(n: int) -> int:
        if n == 999:
            raise CustsiteError("record 999 cannot be read")
        return n

    with pytest.raises(CustsiteError, match="record 999 cannot be read"):
        forked_map(fail_last, list(range(1_000)), 2, cost=lambda n: 1)

    def crash_last(n: int) -> int:
        if n == 999:
            os._exit(3)
        return n

    with pytest.raises(CustsiteError, match="ended unexpectedly"):
        forked_map(crash_last, list(range(1_000)), 2, cost=lambda n: 1)

    def bug_last(n: int) -> int:
        if n == 999:
            raise ZeroDivisionError("bug")
        return n

    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        forked_map(bug_last, list(range(1_000)), 2, cost=lambda n: 1)
