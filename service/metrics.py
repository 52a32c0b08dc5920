"""Prometheus text metrics: requests by route and status, latency histogram, gallery size.

A pure ASGI middleware (no per-request task or body copy), per process.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Callable

BUCKETS = (0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency_buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.latency_buckets[(method, route)][bisect.bisect_left(BUCKETS, seconds)] += 1
            self.latency_sum[(method, route)] += seconds

    def render(self, gauges: dict[str, float]) -> str:
        lines = ["# HELP skulens_requests_total HTTP requests by method, route and status.",
                 "# TYPE skulens_requests_total counter"]
        with self._lock:
            for (method, route, status), count in sorted(self.requests.items()):
                lines.append(f'skulens_requests_total{{method="{method}",route="{route}",status="{status}"}} {count}')
            lines += ["# HELP skulens_request_seconds HTTP request latency.", "# TYPE skulens_request_seconds histogram"]
            for (method, route), buckets in sorted(self.latency_buckets.items()):
                labels = f'method="{method}",route="{route}"'
                cumulative = 0
                for bound, count in zip((*BUCKETS, float("inf")), buckets):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f'skulens_request_seconds_bucket{{{labels},le="{le}"}} {cumulative}')
                lines.append(f"skulens_request_seconds_sum{{{labels}}} {self.latency_sum[(method, route)]:.6f}")
                lines.append(f"skulens_request_seconds_count{{{labels}}} {cumulative}")
        for name, value in gauges.items():
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    def __init__(self, app: Callable, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], path, status, time.perf_counter() - started)


class BodySizeLimit:
    """Answer 413 as soon as a request body exceeds ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Callable, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from service.errors import error_response

        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = f"request body is larger than {self.max_bytes} bytes, the most accepted (setting max_upload_bytes)"
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await error_response(413, "body_too_large", too_large)(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await error_response(413, "body_too_large", too_large)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass
