"""A small closed-loop asyncio + httpx load generator: ``concurrency`` workers, each sending its
next request as soon as the previous one is answered, for a bounded time or number of requests."""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class LevelResult:
    concurrency: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    correct: int = 0
    judged: int = 0
    client_cpu_s: float = 0.0
    errors: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _level(url: str, concurrency: int, make_request: Callable[[int], dict], judge: Callable | None,
                 seconds: float, max_requests: int, warmup_s: float) -> LevelResult:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counter = itertools.count()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:
        async def worker(deadline: float, record: LevelResult | None) -> None:
            while time.perf_counter() < deadline:
                n = next(counter)
                if record is not None and len(record.latencies_s) >= max_requests:
                    return
                request = make_request(n)
                started = time.perf_counter()
                try:
                    response = await client.post(**request)
                    status = response.status_code
                    body = response.content
                except httpx.HTTPError as exc:
                    if record is not None:
                        record.errors[type(exc).__name__] += 1
                    continue
                elapsed = time.perf_counter() - started
                if record is None:
                    continue
                record.latencies_s.append(elapsed)
                record.statuses[status] += 1
                if judge is not None and status == 200:
                    right = judge(n, body)
                    if right is not None:
                        record.judged += 1
                        record.correct += bool(right)

        if warmup_s > 0:  # connections opened, interpreters of the usual batch sizes created
            deadline = time.perf_counter() + warmup_s
            await asyncio.gather(*(worker(deadline, None) for _ in range(concurrency)))
        result = LevelResult(concurrency, 0.0)
        cpu0, started = _cpu(), time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(deadline, result) for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
        result.client_cpu_s = _cpu() - cpu0
    return result


def run_level(url: str, concurrency: int, make_request: Callable[[int], dict], judge: Callable | None = None,
              seconds: float = 15.0, max_requests: int = 100_000, warmup_s: float = 2.0) -> LevelResult:
    """``make_request(n)`` returns ``client.post`` keyword arguments; ``judge(n, body)`` → True/False/None."""
    return asyncio.run(_level(url, concurrency, make_request, judge, seconds, max_requests, warmup_s))
