"""The sink contract: where a batch of events goes, and the named outcome of trying."""

from __future__ import annotations

import asyncio
import enum
import inspect
import threading
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
    runtime_checkable,
)

# An event on the hot path is a plain tuple (key, value, epoch): building a tuple is
# several times cheaper than building an object, and log() must stay well under 1 µs.
Value = Union[bool, int, float, str]
Event = Tuple[str, Value, float]


@dataclass(frozen=True)
class Bucket:
    """Where events land: the bucket key (stream id) and its display name."""

    key: str
    name: str = ""


class Outcome(enum.Enum):
    """What happened to one send; the worker decides what to do next from this alone."""

    OK = "ok"  # accepted by the receiver
    RETRY = "retry"  # timeout, connection trouble, 408, 429, 5xx: try again later
    AUTH = "auth"  # 401/403/402 or a refused password: keep the events, stop sending
    BAD = "bad"  # 400: the receiver will never take this batch; quarantine it
    TOO_LARGE = "too_large"  # 413: split and resend


@dataclass(frozen=True)
class SendResult:
    """The result of Sink.send(); sinks return this and never raise across the thread."""

    outcome: Outcome
    status: Optional[int] = None  # HTTP status or None for non-HTTP sinks
    message: str = ""  # human readable; never contains credentials
    retry_after: Optional[float] = None  # seconds the receiver asked us to wait
    # Partial success: the indices (into the batch that was sent) of the events the receiver
    # did not store; every other event of the batch was stored. ``outcome`` then says what to
    # do with the failed ones (RETRY, BAD, AUTH...). None: ``outcome`` is the whole batch's.
    failed: Optional[Tuple[int, ...]] = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def partial(self) -> bool:
        """True when some of the batch was stored and only ``failed`` needs handling."""
        return self.failed is not None and self.outcome is not Outcome.OK


SENT = SendResult(Outcome.OK)


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
        self._all: List[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    def run(self, awaitable: Any) -> Any:
        loop = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
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

    def __init__(self, func: Callable[[List[dict]], Any]) -> None:
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
