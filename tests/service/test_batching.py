"""The micro-batcher never leaves a request waiting forever."""

import asyncio
import time

import numpy as np
import pytest

from service.batching import MicroBatcher, Overloaded


def slow_double(pixels: np.ndarray) -> np.ndarray:
    time.sleep(0.3)
    return pixels.reshape(len(pixels), -1)[:, :2].astype(np.float32) * 2


def test_a_failure_while_gathering_reaches_the_requests_and_the_worker_goes_on():
    """Images of different shapes in one batch: the concatenation fails; each request gets the error."""

    async def run():
        batcher = MicroBatcher(slow_double, max_batch=8, max_wait_s=0.2)
        await batcher.start()
        a = asyncio.create_task(batcher.submit(np.ones((1, 4, 4, 3), np.uint8)))
        b = asyncio.create_task(batcher.submit(np.ones((1, 5, 5, 3), np.uint8)))
        done, _ = await asyncio.wait([a, b], timeout=5)
        assert len(done) == 2, "requests left waiting after the batch failed"
        assert all(isinstance(t.exception(), ValueError) for t in done)
        ok = await asyncio.wait_for(batcher.submit(np.ones((2, 4, 4, 3), np.uint8)), 5)
        assert ok.shape == (2, 2)
        await batcher.stop()

    asyncio.run(run())


def test_a_dead_worker_answers_503_and_is_restarted():
    async def run():
        batcher = MicroBatcher(slow_double, max_batch=8, max_wait_s=0.0)
        await batcher.start()
        waiting = asyncio.create_task(batcher.submit(np.ones((1, 4, 4, 3), np.uint8)))
        await asyncio.sleep(0.05)  # the worker has the batch, inference running
        batcher._worker.cancel()  # the worker task dies (as on any unexpected error)
        done, _ = await asyncio.wait([waiting], timeout=5)
        assert done, "a request waited forever on a dead inference worker"
        assert isinstance(waiting.exception(), Overloaded) and "restarted" in str(waiting.exception())
        again = await asyncio.wait_for(batcher.submit(np.ones((3, 4, 4, 3), np.uint8)), 5)
        assert again.shape == (3, 2) and batcher.restarts == 1
        await batcher.stop()

    asyncio.run(run())


def test_requests_give_up_after_max_request_s():
    def stuck(pixels):
        time.sleep(1.0)
        return np.zeros((len(pixels), 2), np.float32)

    async def run():
        batcher = MicroBatcher(stuck, max_request_s=0.2)
        await batcher.start()
        started = time.perf_counter()
        with pytest.raises(Overloaded, match="did not answer"):
            await batcher.submit(np.ones((1, 4, 4, 3), np.uint8))
        assert time.perf_counter() - started < 0.9
        await batcher.stop()

    asyncio.run(run())


def test_more_images_per_request_than_the_queue_holds_is_refused_at_start_up(tmp_path):
    from service.app import create_app
    from service.settings import Settings
    from service.startup import StartupError

    with pytest.raises(StartupError, match=r"max_images_per_request \(64\) is larger than max_queue \(16\)"):
        create_app(Settings(data_dir=tmp_path, max_queue=16, max_images_per_request=64))


def test_a_search_batcher_hands_each_request_its_own_answers_from_one_call():
    """``max_wait_s=0``: what queued while the worker was busy goes in one call, answers sliced per request."""
    calls: list[int] = []

    def answers(rows: np.ndarray) -> list[str]:
        calls.append(len(rows))
        time.sleep(0.05)
        return [f"answer {int(r[0])}" for r in rows]

    async def run():
        batcher: MicroBatcher[list[str]] = MicroBatcher(answers, max_batch=64, max_wait_s=0.0, name="search")
        await batcher.start()
        first = asyncio.create_task(batcher.submit(np.array([[0.0]])))
        await asyncio.sleep(0.01)  # the worker is busy with the first: the next eight queue together
        rest = [asyncio.create_task(batcher.submit(np.array([[float(i)], [float(i + 100)]]))) for i in range(1, 9)]
        assert await first == ["answer 0"]
        assert await asyncio.gather(*rest) == [[f"answer {i}", f"answer {i + 100}"] for i in range(1, 9)]
        assert calls == [1, 16]
        await batcher.stop()

    asyncio.run(run())


def test_a_request_cancelled_while_waiting_is_skipped_and_the_next_is_answered():
    """A client that goes away cancels its request: its rows are still embedded with the batch, its
    answer is dropped, and neither the worker nor the requests after it notice."""

    async def run():
        batcher = MicroBatcher(slow_double, max_batch=4, max_wait_s=0.0)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(np.ones((1, 4, 4, 3), np.uint8)))
        gone = asyncio.ensure_future(batcher.submit(np.ones((2, 4, 4, 3), np.uint8)))
        await asyncio.sleep(0)
        gone.cancel()
        assert (await first).shape == (1, 2)
        after = await asyncio.wait_for(batcher.submit(np.ones((3, 4, 4, 3), np.uint8)), 5)
        assert after.shape == (3, 2) and gone.cancelled() and batcher.restarts == 0
        await batcher.stop()

    asyncio.run(run())
