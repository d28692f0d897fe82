"""The sink contract: where a batch of events goes, and the named outcome of trying."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

# The core types live in isstreamer.model; they are re-exported here for older imports.
from ..model import SENT, Bucket, Event, Outcome, SendResult, Value

if TYPE_CHECKING:
    import asyncio  # imported when a coroutine sink first sends: it costs every import ~30 ms

__all__ = [
    "SENT",
    "AsyncSink",
    "Bucket",
    "CallableSink",
    "Event",
    "Outcome",
    "SendResult",
    "Sink",
    "Value",
    "as_sink",
]


@runtime_checkable
class Sink(Protocol):
    """Anything that can deliver a batch of events to one bucket.

    ``address`` identifies the receiver *without credentials*; spill files record it so a
    spool is only replayed to the receiver its batches were meant for.
    """

    address: str

    def send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        """Deliver ``events`` to ``bucket``; create the bucket first if this sink needs to."""
        ...

    def close(self) -> None:
        """Release connections. Called once, from the thread that closes the Streamer."""
        ...


class _Loops:
    """One event loop per thread that sends (the worker's), to await coroutine sinks on."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    def run(self, awaitable: Any) -> Any:
        loop = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            import asyncio

            loop = self._local.loop = asyncio.new_event_loop()
            with self._lock:
                self._all.append(loop)
        return loop.run_until_complete(awaitable)

    def close(self) -> None:
        with self._lock:
            loops, self._all = self._all, []
        for loop in loops:
            if not loop.is_running():  # a worker stuck in a send keeps its loop
                loop.close()


class CallableSink:
    """Adapts a plain callable taking a list of event dicts; raising means "retry later".

    An ``async def`` callable (or one returning an awaitable) is awaited on an event loop
    owned by the sending thread: its events count as sent only once it has returned.
    """

    def __init__(self, func: Callable[[list[dict]], Any]) -> None:
        self._func = func
        self._loops = _Loops()
        self.address = "callable:" + getattr(func, "__qualname__", type(func).__name__)

    def send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        try:
            result = self._func([{"key": k, "value": v, "epoch": e} for k, v, e in events])
            if inspect.isawaitable(result):
                self._loops.run(result)
        except Exception as exc:  # the user's code: any failure is a failed send
            return SendResult(Outcome.RETRY, message=f"{type(exc).__name__}: {exc}")
        return SENT

    def close(self) -> None:
        self._loops.close()
        close = getattr(self._func, "close", None)
        if callable(close):
            close()


class AsyncSink:
    """Adapts an object whose ``send`` (and maybe ``close``) are coroutine functions."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj
        self._loops = _Loops()
        self.address = getattr(obj, "address", type(obj).__name__)

    def send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        result = self._loops.run(self._obj.send(bucket, events))
        if not isinstance(result, SendResult):
            return SendResult(
                Outcome.RETRY, message=f"sink returned {type(result).__name__}, not a SendResult"
            )
        return result

    def close(self) -> None:
        close = getattr(self._obj, "close", None)
        try:
            if callable(close):
                result = close()
                if inspect.isawaitable(result):
                    self._loops.run(result)
        finally:
            self._loops.close()


def as_sink(obj: Any) -> Sink:
    """Return ``obj`` if it speaks the Sink protocol, else wrap it (a callable, a coroutine)."""
    if inspect.iscoroutinefunction(getattr(obj, "send", None)):
        return AsyncSink(obj)
    if callable(getattr(obj, "send", None)):
        if not hasattr(obj, "address"):
            obj.address = type(obj).__name__
        if not callable(getattr(obj, "close", None)):
            obj.close = lambda: None
        return obj
    if callable(obj):
        return CallableSink(obj)
    raise TypeError(
        f"sink must have a send(bucket, events) method or be callable, not {type(obj).__name__}"
    )
