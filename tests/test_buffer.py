"""The bounded buffer's take/done/mark/wait_handled bookkeeping that flush() relies on."""

from __future__ import annotations

import threading
import time

from isstreamer.buffer import Buffer


def filled(n: int) -> Buffer:
    buf = Buffer()
    for i in range(n):
        buf.append(("k", i, float(i)))
    return buf


def test_append_and_take_fifo() -> None:
    """Items come out oldest first, at most max_items at a time."""
    buf = filled(5)
    assert len(buf) == 5
    _, first = buf.take(3)
    _, rest = buf.take(10)
    assert [v for _, v, _ in first] == [0, 1, 2]
    assert [v for _, v, _ in rest] == [3, 4]
    assert len(buf) == 0


def test_take_from_empty_buffer() -> None:
    """Taking from an empty buffer gives no items and a token that can be reported done."""
    buf = Buffer()
    token, items = buf.take(10)
    assert items == []
    buf.done(token)
    assert buf.wait_handled(buf.mark(), deadline=time.monotonic())


def test_tokens_are_distinct() -> None:
    """Every take gets its own token."""
    buf = filled(4)
    tokens = {buf.take(1)[0] for _ in range(4)}
    assert len(tokens) == 4


def test_mark_and_total_count_taken_and_waiting() -> None:
    """mark() and total() are everything ever put in: taken plus still waiting."""
    buf = filled(5)
    assert buf.mark() == buf.total() == 5
    token, _ = buf.take(2)
    assert buf.mark() == 5
    buf.done(token)
    buf.append(("k", 9, 9.0))
    assert buf.mark() == buf.total() == 6


def test_wait_handled_true_once_done() -> None:
    """wait_handled() is True immediately when everything before the mark was taken and done."""
    buf = filled(3)
    mark = buf.mark()
    token, _ = buf.take(3)
    buf.done(token)
    assert buf.wait_handled(mark, deadline=time.monotonic())


def test_taken_but_not_done_is_not_handled() -> None:
    """Items being sent (taken, not done) keep wait_handled() False at its deadline."""
    buf = filled(3)
    mark = buf.mark()
    buf.take(3)
    assert not buf.wait_handled(mark, deadline=time.monotonic())


def test_waiting_items_are_not_handled() -> None:
    """Items still in the buffer keep wait_handled() False."""
    buf = filled(3)
    assert not buf.wait_handled(buf.mark(), deadline=time.monotonic())


def test_earlier_mark_handled_while_later_items_wait() -> None:
    """A mark taken before later events is satisfied without them."""
    buf = filled(2)
    mark = buf.mark()
    buf.append(("late", 1, 1.0))
    token, _ = buf.take(2)
    buf.done(token)
    assert buf.wait_handled(mark, deadline=time.monotonic())
    assert not buf.wait_handled(buf.mark(), deadline=time.monotonic())


def test_out_of_order_completion_does_not_release_early() -> None:
    """When a later batch finishes first, a flush still waits for the earlier one."""
    buf = filled(20)
    mark = buf.mark()
    first, _ = buf.take(10)
    second, _ = buf.take(10)
    buf.done(second)
    assert not buf.wait_handled(mark, deadline=time.monotonic())
    assert not buf.wait_handled(10, deadline=time.monotonic())  # not even the first half
    buf.done(first)
    assert buf.wait_handled(mark, deadline=time.monotonic())


def test_done_of_earlier_batch_releases_only_up_to_later_inflight() -> None:
    """First batch done, second in flight: a mark in the first is handled, one in the second not."""
    buf = filled(20)
    first, _ = buf.take(10)
    buf.take(10)
    buf.done(first)
    assert buf.wait_handled(10, deadline=time.monotonic())
    assert not buf.wait_handled(11, deadline=time.monotonic())


def test_done_twice_is_harmless() -> None:
    """Reporting a token done twice changes nothing."""
    buf = filled(2)
    token, _ = buf.take(2)
    buf.done(token)
    buf.done(token)
    assert buf.wait_handled(2, deadline=time.monotonic())


def test_deadline_returns_false_after_waiting() -> None:
    """A deadline in the near future returns False once it passes, not before, and returns."""
    buf = filled(1)
    buf.take(1)
    start = time.monotonic()
    assert not buf.wait_handled(1, deadline=start + 0.05)
    elapsed = time.monotonic() - start
    assert elapsed >= 0.04
    # Generous: a busy machine can keep a woken thread from the CPU for seconds; a wait that
    # ignored its deadline would never return at all.
    assert elapsed < 10.0


def test_wait_handled_wakes_when_done_from_another_thread() -> None:
    """A waiting flush returns True as soon as a consumer thread reports the batch done."""
    buf = filled(5)
    mark = buf.mark()
    token, _ = buf.take(5)
    result: list = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        result.append(buf.wait_handled(mark, deadline=time.monotonic() + 10))

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait(5)
    buf.done(token)
    thread.join(5)
    assert result == [True]


def test_wait_handled_without_deadline_returns_when_done() -> None:
    """deadline=None waits as long as needed and returns True."""
    buf = filled(1)
    token, _ = buf.take(1)
    timer = threading.Timer(0.0, buf.done, args=(token,))
    timer.start()
    assert buf.wait_handled(1, deadline=None)
    timer.join()
