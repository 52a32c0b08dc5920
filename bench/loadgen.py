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
from typing import Any

import httpx

#: ``judge(n, body)`` → True/False/None, or a fraction right
Judge = Callable[[int, bytes], bool | float | None]
#: run when the measured window opens or closes
Hook = Callable[[], None]


@dataclass
class LevelResult:
    concurrency: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    correct: float = 0.0
    judged: int = 0
    client_cpu_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _level(
    url: str,
    concurrency: int,
    make_request: Callable[[int], dict[str, Any]],
    judge: Judge | None,
    seconds: float,
    max_requests: int,
    warmup_s: float,
    on_start: Hook | None = None,
    on_end: Hook | None = None,
) -> LevelResult:
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
                        record.correct += float(right)

        if warmup_s > 0:  # connections opened, interpreters of the usual batch sizes created
            deadline = time.perf_counter() + warmup_s
            await asyncio.gather(*(worker(deadline, None) for _ in range(concurrency)))
        result = LevelResult(concurrency, 0.0)
        if on_start:
            on_start()
        cpu0, started = _cpu(), time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(deadline, result) for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
        result.client_cpu_s = _cpu() - cpu0
        if on_end:
            on_end()
    return result


def run_level(
    url: str,
    concurrency: int,
    make_request: Callable[[int], dict[str, Any]],
    judge: Judge | None = None,
    seconds: float = 15.0,
    max_requests: int = 100_000,
    warmup_s: float = 2.0,
    on_start: Hook | None = None,
    on_end: Hook | None = None,
) -> LevelResult:
    """``make_request(n)`` returns ``client.post`` keyword arguments; ``judge(n, body)`` → True/False/None (or a
    fraction). ``on_start()`` / ``on_end()`` run right when the measured window (after the warm-up) opens / closes."""
    return asyncio.run(_level(url, concurrency, make_request, judge, seconds, max_requests, warmup_s, on_start, on_end))


# --- a minimal raw HTTP/1.1 client: the same closed loop with far less client CPU ----------------
def encode(url: str, kwargs: dict[str, Any]) -> bytes:
    """One POST as bytes on the wire (headers + body), encoded once by httpx."""
    request = httpx.Request("POST", url + kwargs["url"], **{k: v for k, v in kwargs.items() if k != "url"})
    body = request.read()
    host = request.url.netloc.decode()
    head = [
        f"POST {request.url.raw_path.decode()} HTTP/1.1",
        f"Host: {host}",
        "Connection: keep-alive",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return status, await reader.readexactly(length)


async def _raw_level(
    url: str,
    concurrency: int,
    encoded: list[bytes],
    judge: Judge | None,
    seconds: float,
    max_requests: int,
    warmup_s: float,
    on_start: Hook | None = None,
    on_end: Hook | None = None,
) -> LevelResult:
    parsed = httpx.URL(url)
    counter = itertools.count()

    async def worker(deadline: float, record: LevelResult | None) -> None:
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        try:
            while time.perf_counter() < deadline:
                n = next(counter)
                if record is not None and len(record.latencies_s) >= max_requests:
                    return
                started = time.perf_counter()
                writer.write(encoded[n % len(encoded)])
                await writer.drain()
                status, body = await _read_response(reader)
                elapsed = time.perf_counter() - started
                if record is None:
                    continue
                record.latencies_s.append(elapsed)
                record.statuses[status] += 1
                if judge is not None and status == 200:
                    right = judge(n, body)
                    if right is not None:
                        record.judged += 1
                        record.correct += float(right)
        finally:
            writer.close()

    if warmup_s > 0:
        deadline = time.perf_counter() + warmup_s
        await asyncio.gather(*(worker(deadline, None) for _ in range(concurrency)))
    result = LevelResult(concurrency, 0.0)
    if on_start:
        on_start()
    cpu0, started = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker(started + seconds, result) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    result.client_cpu_s = _cpu() - cpu0
    if on_end:
        on_end()
    return result


def run_level_raw(
    url: str,
    concurrency: int,
    encoded: list[bytes],
    judge: Judge | None = None,
    seconds: float = 15.0,
    max_requests: int = 100_000,
    warmup_s: float = 2.0,
    on_start: Hook | None = None,
    on_end: Hook | None = None,
) -> LevelResult:
    """Like ``run_level`` with pre-encoded requests (``encoded[n % len]``) on raw asyncio streams."""
    return asyncio.run(_raw_level(url, concurrency, encoded, judge, seconds, max_requests, warmup_s, on_start, on_end))
