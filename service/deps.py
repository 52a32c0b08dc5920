"""FastAPI dependencies: the loaded state, and role checks on API keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from embedder.runtime import Embedder
from gallery.decision import resolve_threshold
from gallery.gallery import Gallery
from gallery.types import Recognition
from service.auth import KeyRing, allows
from service.batching import MicroBatcher
from service.errors import ApiError
from service.metrics import Metrics
from service.settings import Settings


@dataclass
class AppState:
    settings: Settings
    embedder: Embedder
    gallery: Gallery
    batcher: MicroBatcher[np.ndarray]
    keys: KeyRing
    metrics: Metrics
    model_threshold: float | None  # the model's calibrated threshold, if any
    searcher: MicroBatcher[list[Recognition]] | None = None  # batches the searches of concurrent requests

    def threshold(self) -> float:
        """From memory (never waits on SQLite): see ``gallery.decision.resolve_threshold``."""
        return resolve_threshold(self.settings.threshold, self.gallery.stored_threshold, self.model_threshold)

    def recognize(self, vectors: np.ndarray) -> list[Recognition]:
        """Search and decide (blocking: call it from a worker thread)."""
        return self.gallery.recognize(
            vectors, self.settings.threshold, self.settings.top_k, model_threshold=self.model_threshold
        )

    async def recognize_batched(self, vectors: np.ndarray) -> list[Recognition]:
        """``recognize`` off the event loop, through ``searcher``: the queries of the requests that are
        waiting together (those one micro-batch embedded) are searched in one gallery search. Each
        answer is the one the query would get alone (``Gallery.search``)."""
        if self.searcher is None:
            return await run_in_threadpool(self.recognize, vectors)
        return await self.searcher.submit(vectors)


# The dependencies below are ``async def`` although they never wait: FastAPI runs a plain ``def``
# dependency in a worker thread, which cost every request two thread hand-offs (bench/README round 5).
async def get_state(request: Request) -> AppState:
    state: AppState | None = getattr(request.app.state, "skulens", None)
    if state is None:
        raise ApiError(503, "not_ready", "the model and gallery are still loading; retry shortly")
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def _presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# Declared for the OpenAPI schema, so that /docs offers "Authorize"; the key is read by ``_presented_key``.
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: roles checkout, merchandiser, admin (a server without keys needs none)",
)
BEARER = HTTPBearer(auto_error=False, scheme_name="Bearer", description="The same API key as a bearer token")
KeyHeader = Annotated[str | None, Security(API_KEY_HEADER)]
BearerToken = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


def require(role: str) -> Any:
    """A dependency that lets a request through only with a key of ``role`` or above."""

    async def check(request: Request, state: StateDep, _header: KeyHeader, _bearer: BearerToken) -> str | None:
        if not state.keys.enabled:
            return None
        have = state.keys.role_of(_presented_key(request))
        if have is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing or invalid API key: send it in the X-API-Key header (or Authorization: Bearer KEY)",
                {"WWW-Authenticate": "Bearer"},
            )
        if not allows(have, role):
            raise ApiError(403, "forbidden", f"a {have!r} key may not do this; it needs the {role!r} role or above")
        return have

    return Depends(check)


Checkout = require("checkout")
Merchandiser = require("merchandiser")
Admin = require("admin")
