"""JSON request bodies read with their numbers exact: a JSON number becomes a ``Decimal`` of its own
decimal text (``2.3500000000000000001`` stays that, where a float would make it ``2.35``), so that a
price can be checked for precision as it was sent. Validated by a pydantic model, with a context
(the currency); failures are the usual 422 ``invalid_request``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.errors import ApiError

M = TypeVar("M", bound=BaseModel)


def loads_exact(data: bytes) -> Any:
    """JSON with every non-integer number (and NaN / Infinity, which Python's json accepts) as a ``Decimal``."""
    return json.loads(data, parse_float=Decimal, parse_constant=Decimal)


async def read_json_model(request: Request, model: type[M], context: dict[str, Any] | None = None) -> M:
    media_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(
            415, "unsupported_media_type", f"request content type {media_type!r}; accepted: application/json"
        )
    body = await request.body()
    try:
        data = loads_exact(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(
            422,
            "invalid_request",
            f"the body is not valid JSON: {exc} (received {body[:60]!r}{'...' if len(body) > 60 else ''})",
        ) from None
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
