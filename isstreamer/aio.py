"""asyncio methods of the Streamer: flush and close without blocking the event loop.

``flush()`` and ``close()`` wait on the worker (or, with ``use_async=False``, send on the
calling thread) for up to their timeout; awaited, they run on a thread of their own while
the loop goes on. ``log()`` needs no async twin: it never blocks.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio  # imported by the first await: it costs every `import isstreamer` ~30 ms

_S = TypeVar("_S", bound="AsyncMethods")


async def _off_loop(func: Any, *args: Any) -> Any:
    """Run ``func(*args)`` on a daemon thread; the loop is woken with its result.

    Not the loop's default executor: a flush to a hanging receiver would hold one of its
    threads for the whole timeout, and close() at interpreter exit must not wait on a pool.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def settle(outcome: Any, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(outcome)

    def run() -> None:
        try:
            outcome, error = func(*args), None
        except BaseException as exc:  # handed to the awaiting task, never lost on a thread
            outcome, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, outcome, error)
        except RuntimeError:  # the loop was closed meanwhile: nobody awaits any more
            pass

    threading.Thread(target=run, name="isstreamer-aio", daemon=True).start()
    # shield: a cancelled await leaves flush()/close() to finish by their own deadline.
    return await asyncio.shield(done)


class AsyncMethods:
    """``async with``, ``aflush()`` and ``aclose()`` over the Streamer's flush() and close()."""

    def flush(self, timeout: float | None = None) -> bool:
        raise NotImplementedError  # Streamer's

    def close(self, timeout: float = 10.0) -> bool:
        raise NotImplementedError  # Streamer's

    async def aflush(self, timeout: float | None = None) -> bool:
        """``flush(timeout)`` without blocking the event loop (same meaning, same result)."""
        return bool(await _off_loop(self.flush, timeout))

    async def aclose(self, timeout: float = 10.0) -> bool:
        """``close(timeout)`` without blocking the event loop (same meaning, same result)."""
        return bool(await _off_loop(self.close, timeout))

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
