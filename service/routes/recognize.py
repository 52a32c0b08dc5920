"""Checkout: recognise one crop, or a basket of crops."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from embedder.tta import flip_average, with_mirrored
from gallery.types import Recognition
from service.deps import AppState, Checkout, StateDep
from service.routes.openapi import file_field, files_field, multipart_body
from service.schemas import BatchRecognitionOut, RecognitionOut
from service.uploads import decode_images, read_images

router = APIRouter(prefix="/v1", tags=["recognise"])

IMAGE_BODY = multipart_body({"image": file_field()}, required=["image"], raw_media_types=["image/jpeg", "image/png"])
BATCH_BODY = multipart_body({"images": files_field()}, required=["images"])


def to_json(result: Recognition, model_version: str) -> dict[str, Any]:
    """The ``RecognitionOut`` shape as plain JSON values (the route's answer; the model documents it)."""
    return {
        "sku": result.sku,
        "name": result.matches[0].name if result.known and result.matches else None,
        "score": result.score,
        "similarity": result.similarity,
        "decision": "known" if result.known else "unknown",
        "threshold": result.threshold,
        "matches": [{"sku": m.sku, "name": m.name, "score": m.score} for m in result.matches],
        "model_version": model_version,
    }


def json_response(content: dict[str, Any]) -> Response:
    """JSON bytes made here: FastAPI would validate the answer against ``response_model`` and encode it
    again (twice the CPU for the same bytes, bench/README round 5); the model stays for OpenAPI."""
    return Response(
        json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")), media_type="application/json"
    )


async def _recognize(request: Request, state: AppState, field: str, single: bool) -> list[dict[str, Any]]:
    settings = state.settings
    images = await read_images(request, settings, field, single)
    pixels = await decode_images(images, state.embedder.input_size, settings.max_pixels)
    if settings.tta_flip:
        vectors = flip_average(await state.batcher.submit(with_mirrored(pixels)))
    else:
        vectors = await state.batcher.submit(pixels)
    results = await state.recognize_batched(vectors)
    return [to_json(r, state.embedder.version) for r in results]


@router.post(
    "/recognize",
    response_model=RecognitionOut,
    openapi_extra=IMAGE_BODY,
    summary="Recognise one product crop (multipart field 'image', or a raw image body)",
)
async def recognize(request: Request, state: StateDep, _role: str | None = Checkout) -> Response:
    return json_response((await _recognize(request, state, "image", single=True))[0])


@router.post(
    "/recognize/batch",
    response_model=BatchRecognitionOut,
    openapi_extra=BATCH_BODY,
    summary="Recognise several crops (multipart field 'images'); answers in order",
)
async def recognize_batch(request: Request, state: StateDep, _role: str | None = Checkout) -> Response:
    results = await _recognize(request, state, "images", single=False)
    return json_response({"results": results, "model_version": state.embedder.version})
