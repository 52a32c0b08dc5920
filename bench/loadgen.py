"""A small closed-loop asyncio + httpx load generator: ``concurrency`` workers, each sending its
next request as soon as the previous one is answered, for a bounded time or number of requests."""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
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


@dataclass(frozen=True)
class Window:
    """One level's measured window: ``seconds`` (at most ``max_requests``) after ``warmup_s`` not counted;
    ``judge`` marks answers right or wrong; ``on_start`` / ``on_end`` run as the window opens / closes."""

    seconds: float = 15.0
    max_requests: int = 100_000
    warmup_s: float = 2.0
    judge: Judge | None = None
    on_start: Hook | None = None
    on_end: Hook | None = None


#: ``send(n)`` → (status, body) of request ``n``
Send = Callable[[int], Awaitable[tuple[int, bytes]]]
#: one worker's connection: entered once per worker, yields its ``send``
Session = Callable[[], AbstractAsyncContextManager[Send]]


async def _closed_loop(concurrency: int, window: Window, session: Session) -> LevelResult:
    """``concurrency`` workers, each sending its next request as soon as the last is answered: the warm-up,
    then the measured window, recorded once for both clients."""
    counter = itertools.count()

    async def worker(deadline: float, record: LevelResult | None) -> None:
        async with session() as send:
            while time.perf_counter() < deadline:
                n = next(counter)
                if record is not None and len(record.latencies_s) >= window.max_requests:
                    return
                started = time.perf_counter()
                try:
                    status, body = await send(n)
                except httpx.HTTPError as exc:
                    if record is not None:
                        record.errors[type(exc).__name__] += 1
                    continue
                elapsed = time.perf_counter() - started
                if record is None:
                    continue
                record.latencies_s.append(elapsed)
                record.statuses[status] += 1
                if window.judge is not None and status == 200:
                    right = window.judge(n, body)
                    if right is not None:
                        record.judged += 1
                        record.correct += float(right)

    if window.warmup_s > 0:  # connections opened, interpreters of the usual batch sizes created
        deadline = time.perf_counter() + window.warmup_s
        await asyncio.gather(*(worker(deadline, None) for _ in range(concurrency)))
    result = LevelResult(concurrency, 0.0)
    if window.on_start:
        window.on_start()
    cpu0, started = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker(started + window.seconds, result) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    result.client_cpu_s = _cpu() - cpu0
    if window.on_end:
        window.on_end()
    return result


async def _httpx_level(
    url: str, concurrency: int, make_request: Callable[[int], dict[str, Any]], window: Window
) -> LevelResult:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:

        async def send(n: int) -> tuple[int, bytes]:
            response = await client.post(**make_request(n))
            return response.status_code, response.content

        @asynccontextmanager
        async def session() -> AsyncIterator[Send]:
            yield send  # one pooled client for every worker

        return await _closed_loop(concurrency, window, session)


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
    window = Window(seconds, max_requests, warmup_s, judge, on_start, on_end)
    return asyncio.run(_httpx_level(url, concurrency, make_request, window))


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


async def _raw_level(url: str, concurrency: int, encoded: list[bytes], window: Window) -> LevelResult:
    parsed = httpx.URL(url)

    @asynccontextmanager
    async def session() -> AsyncIterator[Send]:
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)  # one connection per worker

        async def send(n: int) -> tuple[int, bytes]:
            writer.write(encoded[n % len(encoded)])
            await writer.drain()
            return await _read_response(reader)

        try:
            yield send
        finally:
            writer.close()

    return await _closed_loop(concurrency, window, session)


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
    window = Window(seconds, max_requests, warmup_s, judge, on_start, on_end)
    return asyncio.run(_raw_level(url, concurrency, encoded, window))
