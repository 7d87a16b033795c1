"""forked_map: the work split among forked processes comes back whole, in order, and any
failure of a forked process is raised here, never waited on forever. Background: work done
meanwhile by a forked process, and what it answers."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from custsite.errors import CustsiteError
from custsite.forking import Background, can_fork, forked_map

pytestmark = pytest.mark.skipif(not can_fork(), reason="needs the fork start method")


def _double(n: int) -> tuple[int, int]:
    time.sleep(0.0002)  # long enough for every process to have started before the end
    return n * 2, os.getpid()


@pytest.mark.parametrize("jobs", [2, 3])
def test_results_come_back_in_order_from_every_process(jobs: int) -> None:
    items = list(range(2_000))
    found = forked_map(_double, items, jobs, cost=lambda n: 1)
    assert [value for value, _ in found] == [n * 2 for n in items]
    assert len({pid for _, pid in found}) == jobs
    assert found[0][1] == os.getpid()  # this process takes the first chunk


@pytest.mark.parametrize("jobs", [2, 3])
def test_this_process_works_from_the_front_the_others_from_the_back(jobs: int) -> None:
    """What this process makes is not sent: it takes the first items, in order, and the
    forked processes the last ones."""
    found = forked_map(_double, list(range(2_000)), jobs, cost=lambda n: 1)
    mine = [pid == os.getpid() for _, pid in found]
    assert 0 < mine.count(True) < len(found)
    assert mine == sorted(mine, reverse=True)  # a prefix of this process's, then the others'


def test_a_slower_process_leaves_its_part_to_the_others() -> None:
    """A forked process four times slower (another program on its core, say) does about a
    fifth of the work, not half: the finish stays even."""
    here = os.getpid()

    def work(n: int) -> int:
        time.sleep(0.0002 if os.getpid() == here else 0.0008)
        return os.getpid()

    started = time.perf_counter()
    found = forked_map(work, list(range(2_000)), 2, cost=lambda n: 1)
    mine = sum(pid == here for pid in found)
    assert 0.65 * len(found) < mine < len(found)
    assert time.perf_counter() - started < 0.8 * 2_000 * 0.0002 * 2  # not half each: 0.8 s


def test_chunks_cover_the_items_by_cost() -> None:
    from custsite.forking import _chunk_bounds

    costs = [1] * 50 + [100] * 5 + [1] * 50
    bounds = _chunk_bounds(costs, 6)
    assert bounds[0] == 0 and bounds[-1] == len(costs) and bounds == sorted(set(bounds))
    chunk_costs = [sum(costs[a:b]) for a, b in itertools.pairwise(bounds)]
    assert max(chunk_costs) <= 2 * sum(costs) / 6
    assert _chunk_bounds([], 6) == [0, 0]
    assert _chunk_bounds([5], 6) == [0, 1]


def test_large_results_do_not_stall_the_processes() -> None:
    """Results far larger than a pipe holds, sent while this process is still at work."""
    big = forked_map(lambda n: bytes([n % 256]) * 200_000, list(range(300)), 2,
                     cost=lambda n: 1)
    assert [b[0] for b in big] == [n % 256 for n in range(300)]
    assert all(len(b) == 200_000 for b in big)


PARENT = os.getpid()


def _in_a_forked_process(n: int) -> bool:
    time.sleep(0.0002)  # every process takes chunks
    return os.getpid() != PARENT


def _report(n: int) -> int:
    if _in_a_forked_process(n):
        raise CustsiteError("record 999 cannot be read")
    return n


def _crash(n: int) -> int:
    if _in_a_forked_process(n):
        os._exit(3)
    return n


def _bug(n: int) -> int:
    if _in_a_forked_process(n):
        raise ZeroDivisionError("bug")
    return n


@pytest.mark.parametrize(("func", "raised", "message"), [
    (_report, CustsiteError, "record 999 cannot be read"),  # a problem reported as it is
    (_crash, CustsiteError, "ended unexpectedly"),  # never waited on forever
    (_bug, RuntimeError, "ZeroDivisionError"),  # with the forked process's traceback
])
def test_a_failure_in_a_forked_process_is_raised_here(
        func: Callable[[int], int], raised: type[Exception], message: str) -> None:
    """Every item fails in a forked process, whichever chunk it takes."""
    with pytest.raises(raised, match=message):
        forked_map(func, list(range(1_000)), 2, cost=lambda n: 1)


def test_background_work_answers_or_fails_quietly(tmp_path: Path) -> None:
    """A forked process's work gives back what it made (large answers too), None when it
    failed; cancelled, it stops where it is and gives nothing."""
    here = os.getpid()
    big = Background(lambda: (os.getpid(), "x" * 1_000_000))
    pid, text = big.wait()  # type: ignore[misc]
    assert pid != here and text == "x" * 1_000_000
    assert big.wait() == (pid, text)  # asked again: the same answer

    def failing() -> object:
        raise OSError("no")

    assert Background(failing).wait() is None
    marker = tmp_path / "finished"

    def slow() -> object:
        time.sleep(5)
        marker.write_text("done")
        return "late"

    at_once = Background(os.getpid, here=True)  # small work: done here, before it returns
    assert at_once.pid is None and at_once.wait() == here
    started = time.monotonic()
    stopped = Background(slow)
    stopped.cancel()
    assert stopped.wait() is None and not marker.exists()
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("here", [False, True])
def test_background_work_tells_what_it_found_before_it_is_done(tmp_path: Path,
                                                               here: bool) -> None:
    """Work started `telling` tells, once, what it found so far: `told` has it while the
    work goes on, `done` says it is not over, and `wait` still gives what it made. Work
    that ends without telling tells None; what it made is still there."""
    go_on = tmp_path / "go-on"

    def finding(tell: Callable[[object], None]) -> object:
        tell(("found", os.getpid()))
        while not here and not go_on.exists():
            time.sleep(0.01)
        return "made"

    work = Background(finding, here=here, telling=True)
    found, pid = work.told()  # type: ignore[misc]
    assert found == "found" and (pid == os.getpid()) is here
    assert work.done() is here
    go_on.write_text("")
    assert work.wait() == "made" and work.done()
    assert work.told() == ("found", pid)

    def silent(tell: Callable[[object], None]) -> object:
        return "quiet"

    quiet = Background(silent, here=here, telling=True)
    assert quiet.told() is None and quiet.wait() == "quiet"

    def failing(tell: Callable[[object], None]) -> object:
        raise OSError("no")

    broken = Background(failing, here=here, telling=True)
    assert broken.told() is None and broken.wait() is None


def test_telling_a_large_answer_does_not_hold_the_work_up(tmp_path: Path) -> None:
    """What work tells may be larger than a pipe holds (the live site's listing: a
    megabyte): it goes on before this process reads it."""
    finished = tmp_path / "finished"

    def finding(tell: Callable[[object], None]) -> object:
        tell("x" * 2_000_000)
        finished.write_text("yes")
        return "made"

    work = Background(finding, telling=True)
    deadline = time.monotonic() + 20
    while not finished.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert finished.exists()  # not read yet, and the work went on
    assert work.told() == "x" * 2_000_000 and work.wait() == "made"


@pytest.mark.parametrize("here", [False, True])
def test_work_tells_its_news_in_order_and_is_heard_without_waiting(tmp_path: Path,
                                                                    here: bool) -> None:
    """Work may tell more than once (the build's looking process tells whether anything
    changed, then the live site's listing): `told(k)` is the k-th news; `heard(k)` says,
    without waiting, whether it came; news never told is None once the work is done."""
    go_on = tmp_path / "go-on"

    def finding(tell: Callable[[object], None]) -> object:
        tell("first")
        while not here and not go_on.exists():
            time.sleep(0.01)
        tell("x" * 1_000_000)
        return "made"

    work = Background(finding, here=here, telling=True)
    assert work.told(0) == "first"
    if not here:
        time.sleep(0.2)
        assert not work.heard(1) and not work.done()
    go_on.write_text("")
    assert work.told(1) == "x" * 1_000_000 and work.heard(1)
    assert work.wait() == "made"
    assert work.told(2) is None and work.heard(2)


def test_a_forked_process_gives_way_to_this_one() -> None:
    """Forked work that gives way runs at a lower priority (a higher nice value) than this
    process, which is left as it was."""
    from custsite.forking import YIELDING, give_way

    mine = os.nice(0)

    def yielding() -> int:
        give_way()
        return os.nice(0)

    assert Background(yielding).wait() == min(mine + YIELDING, 19)
    assert Background(lambda: os.nice(0)).wait() == mine == os.nice(0)
