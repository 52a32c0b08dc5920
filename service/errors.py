"""One JSON error shape everywhere: ``{"error": {"status", "code", "message"}}``.

Domain exceptions are mapped to HTTP statuses here, at the edge, and nowhere else.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from embedder.preprocess import ImageError, ImageTooLarge, UnsupportedImage
from gallery.lanes import BackgroundNotFound, InvalidLane, InvalidLaneSetting, LaneNotFound
from gallery.stores.base import CatalogUnreachable
from gallery.types import ImageNotFound, InvalidSku, ModelMismatch, SkuNotFound
from service.batching import Overloaded
from service.checkout import CounterUnavailable

logger = logging.getLogger(__name__)

CATALOG_RETRY_AFTER_S = 5  # a shared catalogue that cannot be reached: writes are refused, try again after this


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "code": code, "message": message}}, status, headers=headers)


# (exception type, status, code); the first match wins, so subclasses come first
MAPPING: list[tuple[type[Exception], int, str]] = [
    (UnsupportedImage, 415, "unsupported_image"),
    (ImageTooLarge, 413, "image_too_large"),
    (ImageError, 400, "unreadable_image"),
    (ImageNotFound, 404, "image_not_found"),
    (SkuNotFound, 404, "sku_not_found"),
    (InvalidSku, 422, "invalid_sku"),
    (BackgroundNotFound, 404, "background_not_found"),
    (InvalidLane, 422, "invalid_lane"),
    (LaneNotFound, 404, "lane_not_found"),
    (InvalidLaneSetting, 422, "invalid_lane_setting"),
    (ModelMismatch, 409, "model_mismatch"),
    (CounterUnavailable, 501, "counter_extra_missing"),
]


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        value = err.get("input")
        received = (str(value) if isinstance(value, Decimal) else repr(value))[:80]  # a JSON number as sent
        parts.append(f"{where}: {err.get('msg')} (received {received})")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    for exc_type, status, code in MAPPING:

        def handler(request: Request, exc: Exception, status: int = status, code: str = code) -> JSONResponse:
            return error_response(status, code, str(exc))

        app.add_exception_handler(exc_type, handler)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return error_response(503, "overloaded", str(exc), {"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(CatalogUnreachable)
    async def catalog_unreachable(request: Request, exc: CatalogUnreachable) -> JSONResponse:
        logger.warning("%s %s: %s", request.method, request.url.path, exc)  # where it is: in the log, not the answer
        # a write may have committed before the catalogue was lost (then the index's catch-up failed)
        return error_response(
            503,
            "catalog_unreachable",
            "the catalogue cannot be reached now; a write may or may not "
            "have been applied, and retrying it is safe (enrolment is idempotent by content; a "
            "delete already applied answers 404). Recognition still answers. Try again shortly",
            {"Retry-After": str(CATALOG_RETRY_AFTER_S)},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error; the server log has the details")
