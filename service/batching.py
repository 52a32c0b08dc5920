"""Micro-batching: concurrent requests share one inference call.

Requests put their (already decoded) images on a bounded queue; one worker task
takes the first, waits at most ``max_wait_s`` for more until ``max_batch``
images are gathered, runs the embedder once on a dedicated thread (the event
loop never blocks on inference) and hands each request its rows back. When the
queue is full, ``submit`` raises ``Overloaded`` at once instead of growing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

logger = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class MicroBatcher:
    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], max_batch: int = 16, max_wait_s: float = 0.002,
                 max_queue: int = 256):
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._queue: asyncio.Queue | None = None
        self._queued_images = 0
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.batches = 0
        self.images = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def submit(self, pixels: np.ndarray) -> np.ndarray:
        """Embed ``pixels`` ``(n, s, s, 3)``; returns ``(n, dim)``."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        if self._queued_images + len(pixels) > self.max_queue:
            raise Overloaded(f"{self._queued_images} images are waiting for inference (limit {self.max_queue}); retry shortly")
        future = asyncio.get_running_loop().create_future()
        self._queued_images += len(pixels)
        self._queue.put_nowait((pixels, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._queue.get()]
            count = len(items[0][0])
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
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                items.append(item)
                count += len(item[0])
            self._queued_images -= count
            batch = np.concatenate([pixels for pixels, _ in items]) if len(items) > 1 else items[0][0]
            try:
                vectors = await loop.run_in_executor(self._executor, self.fn, batch)
            except Exception as exc:  # hand the failure to every waiting request
                logger.exception("inference failed on a batch of %d images", len(batch))
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.images += len(batch)
            start = 0
            for pixels, future in items:
                if not future.done():
                    future.set_result(vectors[start:start + len(pixels)])
                start += len(pixels)
