"""The FastAPI application. Model and gallery are loaded at start-up (lifespan), not at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from embedder.preprocess import configure_pixel_limit
from embedder.runtime import Embedder, load_embedder
from gallery.types import ModelMismatch
from service.auth import LoopbackOnly
from service.batching import MicroBatcher
from service.console import install_console
from service.deps import AppState
from service.errors import install_error_handlers
from service.gallery_factory import open_gallery
from service.metrics import BodySizeLimit, Metrics, MetricsMiddleware
from service.model_source import resolve_model
from service.routes import admin, checkout, health, lanes, recognize, session, skus
from service.settings import Settings
from service.startup import StartupError, check_bind, check_catalogue, check_serving_limits, load_keys

__all__ = ["StartupError", "app_from_env", "create_app"]

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    *,
    lookalike_beta: float = 0.0,
    runner_up_gamma: float = 0.0,
) -> FastAPI:
    """Build the app; ``embedder`` may be given (tests, benchmarks), else it is loaded at start-up.

    ``lookalike_beta``, ``runner_up_gamma``: the open-set score's weights for a given ``embedder`` (its model's,
    ``ModelArtifact``; default the plain similarity); a model loaded at start-up brings its own.

    The key file and the bind policy are checked here, where every way of starting the app passes
    (``skulens serve`` and ``uvicorn --factory`` alike): ``StartupError`` if they fail.
    """
    settings = settings or Settings()
    check_serving_limits(settings)
    keys = load_keys(settings)
    check_bind(settings, keys)
    check_catalogue(settings)  # created or migrated here, before any request; currency checked
    configure_pixel_limit(settings.max_pixels)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model_threshold = None
        beta, gamma = lookalike_beta, runner_up_gamma
        model = embedder
        if model is None:
            artifact = resolve_model(settings.model, settings.data_dir)
            model = load_embedder(artifact, num_threads=settings.num_threads)
            model_threshold, beta, gamma = artifact.threshold, artifact.lookalike_beta, artifact.runner_up_gamma
        gallery = open_gallery(settings, model.version, model.embedding_dim, lookalike_beta=beta, runner_up_gamma=gamma)
        if not keys.enabled:
            logger.warning("no API keys configured: the API is open to anyone who can reach %s", settings.host)
        batcher = MicroBatcher(
            model.embed,
            settings.max_batch,
            settings.max_wait_ms / 1000.0,
            settings.max_queue,
            on_batch=metrics.inference,
        )
        await batcher.start()
        state = AppState(settings, model, gallery, batcher, keys, metrics, model_threshold)
        # the searches of the requests one micro-batch answered, in one gallery search (no waiting added)
        searcher = MicroBatcher(
            state.recognize,
            max_batch=settings.max_queue,
            max_wait_s=0.0,
            max_queue=4 * settings.max_queue,
            name="search",
            expected_errors=(ModelMismatch,),
            on_batch=metrics.search,
        )
        await searcher.start()
        state.searcher = searcher
        app.state.skulens = state
        skus_count, images = gallery.counts()
        logger.info(
            "ready: model %s, %d SKUs, %d reference images, data dir %s",
            model.version,
            skus_count,
            images,
            settings.data_dir,
        )
        try:
            yield
        finally:
            app.state.skulens = None
            await batcher.stop()
            await searcher.stop()
            gallery.close(snapshot=True)

    app = FastAPI(
        title="skulens",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Product (SKU) recognition for retail checkout, with open-set enrolment.",
    )
    app.state.metrics = metrics
    app.state.skulens = None
    install_error_handlers(app)
    app.include_router(recognize.router)
    app.include_router(checkout.router)
    app.include_router(skus.router)
    app.include_router(lanes.router)
    app.include_router(admin.router)
    app.include_router(health.router)
    app.include_router(session.router)
    install_console(app)  # /, /static, /docs served from the package (works offline)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if not keys.enabled and not settings.insecure:
        app.add_middleware(LoopbackOnly)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory (``--factory``): settings from ``SKULENS_*`` environment variables."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(settings)
