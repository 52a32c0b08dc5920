"""Prometheus metrics through ``prometheus_client``: requests by route and status, latency histogram,
inference batches and images, gallery searches and queries (counters), gallery size (gauges).

With several worker processes (``skulens serve --workers N``) every process writes its values to
files in ``PROMETHEUS_MULTIPROC_DIR`` (set, emptied at start-up and handed to the workers by
``skulens serve``: ``prepare_multiprocess_dir``) and a scrape answered by any worker adds up all of
them. The request middleware is pure ASGI (no per-request task or body copy).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def prepare_multiprocess_dir(data_dir: Path, port: int) -> Path:
    """An empty folder for the workers' metric files (left-overs of an earlier run would add up)."""
    given = os.environ.get(MULTIPROC_ENV)
    folder = Path(given) if given else Path(data_dir) / ".metrics" / str(port)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


class Metrics:
    """One app's metrics, in a registry of its own (several apps in one process stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        r = self.registry
        self.requests = Counter(
            "skulens_requests_total",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "skulens_request_seconds", "HTTP request latency.", ["method", "route"], buckets=BUCKETS, registry=r
        )
        self.batches = Counter("skulens_inference_batches_total", "Inference calls (micro-batches).", registry=r)
        self.images = Counter("skulens_inference_images_total", "Images embedded.", registry=r)
        self.search_batches = Counter(
            "skulens_search_batches_total",
            "Gallery searches (the queries of requests waiting together: one search).",
            registry=r,
        )
        self.search_queries = Counter("skulens_search_queries_total", "Queries searched.", registry=r)
        # multiprocess_mode "mostrecent": every worker sees the same gallery
        self.skus = Gauge("skulens_gallery_skus", "SKUs in the catalogue.", registry=r, multiprocess_mode="mostrecent")
        self.reference_images = Gauge(
            "skulens_gallery_reference_images", "Reference images.", registry=r, multiprocess_mode="mostrecent"
        )
        self.index_vectors = Gauge(
            "skulens_index_vectors",
            "Vectors in the index (photos and their views).",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request: its count and latency (the labelled series of each route and status are looked
        up once and kept: ``labels()`` costs a lock and a dict of its own on every call)."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def inference(self, images: int) -> None:
        self.batches.inc()
        self.images.inc(images)

    def search(self, queries: int) -> None:
        self.search_batches.inc()
        self.search_queries.inc(queries)

    def render(self, skus: int | None = None, images: int | None = None, vectors: int | None = None) -> bytes:
        if skus is not None:
            self.skus.set(skus)
            self.reference_images.set(images or 0)
            self.index_vectors.set(vectors or 0)
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
            return generate_latest(registry)
        return generate_latest(self.registry)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
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

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from service.errors import error_response

        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = f"request body is larger than {self.max_bytes} bytes, the most accepted (setting max_upload_bytes)"
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await error_response(413, "body_too_large", too_large)(scope, receive, send)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        started = False

        async def tracking_send(message: Message) -> None:
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
