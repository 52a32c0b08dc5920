"""Micro-batching: concurrent requests share one inference call.

Requests put their (already decoded) images on a bounded queue; one worker task
takes the first, waits at most ``max_wait_s`` for more until ``max_batch``
images are gathered, runs the embedder once on a dedicated thread (the event
loop never blocks on inference) and hands each request its rows back. When the
queue is full, ``submit`` raises ``Overloaded`` at once instead of growing.

No request waits forever: everything the worker does for a batch is inside one
``try`` (a failure goes to that batch's requests); should the worker task itself
die, its waiting requests get ``Overloaded`` (503) and a new worker is started;
and a request gives up with ``Overloaded`` after ``max_request_s`` in any case.

The same machinery batches any blocking function of stacked rows whose answer has
one entry per row (sliced back per request): the service also runs one with
``max_wait_s=0`` for the gallery search, so that the queries of the requests a
micro-batch answered together are searched together (one FAISS search).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

R = TypeVar("R")  # what ``fn`` answers for a batch: one entry per row (an array of vectors, a list of results)
Item = tuple[np.ndarray, "asyncio.Future[Any]"]


class Overloaded(RuntimeError):
    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class MicroBatcher(Generic[R]):
    def __init__(
        self,
        fn: Callable[[np.ndarray], R],
        max_batch: int = 16,
        max_wait_s: float = 0.002,
        max_queue: int = 256,
        max_request_s: float = 120.0,
        on_batch: Callable[[int], None] | None = None,
        name: str = "inference",
        expected_errors: tuple[type[Exception], ...] = (),
    ):
        """``on_batch(images)``: called after each inference call (metrics). ``name``: of the worker
        thread and in log lines. ``expected_errors``: handed to the batch's requests without a traceback
        in the log (the gallery's ``ModelMismatch``, which each request answers as 409)."""
        self.fn = fn
        self.name = name
        self.expected_errors = expected_errors
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.max_request_s = max_request_s
        self.on_batch = on_batch
        self._queue: asyncio.Queue[Item] | None = None
        self._queued_images = 0
        self._in_flight: list[Item] = []  # the batch being gathered or embedded
        self._worker: asyncio.Task[None] | None = None
        self._stopping = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.batches = 0
        self.images = 0
        self.restarts = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._start_worker()

    def _start_worker(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")
        self._worker.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        """The worker ended: on ``stop`` that is expected; otherwise fail its requests and start another."""
        if self._stopping:
            return
        why = "cancelled" if task.cancelled() else repr(task.exception())
        logger.error("the %s worker stopped (%s): failing its waiting requests and restarting it", self.name, why)
        self._fail_waiting(Overloaded(f"the {self.name} worker stopped and was restarted; retry the request"))
        self.restarts += 1
        self._start_worker()

    def _fail_waiting(self, error: Exception) -> None:
        waiting, self._in_flight = list(self._in_flight), []
        assert self._queue is not None
        while not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        self._queued_images = 0
        for _, future in waiting:
            if not future.done():
                future.set_exception(error)

    async def stop(self) -> None:
        self._stopping = True
        if self._worker:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, pixels: np.ndarray) -> R:
        """Embed ``pixels`` ``(n, s, s, 3)``; returns ``(n, dim)`` (generally: ``fn``'s answer for these rows)."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        if self._queued_images + len(pixels) > self.max_queue:
            raise Overloaded(
                f"{self._queued_images} images are waiting for {self.name} (limit {self.max_queue}); retry shortly"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queued_images += len(pixels)
        self._queue.put_nowait((pixels, future))
        # A timer on the future itself, not ``wait_for(shield(future))``: that chain costs three more
        # callbacks of the event loop per request. A cancelled request cancels its future, which the
        # worker then skips (it hands results only to futures not done).
        timer = loop.call_later(self.max_request_s, self._expire, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _expire(self, future: asyncio.Future[Any]) -> None:
        if not future.done():
            future.set_exception(
                Overloaded(f"{self.name} did not answer within {self.max_request_s:.0f} s; retry shortly")
            )

    async def _gather(self) -> int:
        """Take the next batch into ``_in_flight``; returns its number of images."""
        assert self._queue is not None
        self._in_flight = [await self._queue.get()]
        count = len(self._in_flight[0][0])
        deadline = time.perf_counter() + self.max_wait_s
        while count < self.max_batch:
            try:
                if self._queue.empty():
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                else:
                    item = self._queue.get_nowait()
            except (TimeoutError, asyncio.QueueEmpty):
                break
            self._in_flight.append(item)
            count += len(item[0])
        self._queued_images -= count
        return count

    def _call(self, parts: list[np.ndarray]) -> R:
        """``fn`` on the rows of every request of the batch (one request's rows as they are: no copy)."""
        return self.fn(np.concatenate(parts) if len(parts) > 1 else parts[0])

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            count = await self._gather()
            items = self._in_flight
            try:
                parts = [pixels for pixels, _ in items]
                # stacked on the worker thread, not on the event loop (a copy of every image of the batch)
                vectors: Any = await loop.run_in_executor(self._executor, self._call, parts)  # sliced per request
                start = 0
                for pixels, future in items:
                    if not future.done():
                        future.set_result(vectors[start : start + len(pixels)])
                    start += len(pixels)
                self.batches += 1
                self.images += count
                if self.on_batch is not None:
                    self.on_batch(count)
            except Exception as exc:  # hand the failure to every request of this batch
                if isinstance(exc, self.expected_errors):
                    logger.debug("%s refused a batch of %d rows: %s", self.name, count, exc)
                else:
                    logger.exception("%s failed on a batch of %d rows", self.name, count)
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
            self._in_flight = []  # (not on cancellation: the done-callback fails what was in flight)
