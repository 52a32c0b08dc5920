"""Checkout: recognise one crop, or a basket of crops."""

from __future__ import annotations

from fastapi import APIRouter, Request

from embedder.tta import flip_average, with_mirrored
from gallery.types import Recognition
from service.deps import AppState, Checkout, StateDep
from service.schemas import BatchRecognitionOut, MatchOut, RecognitionOut
from service.uploads import decode_images, read_images

router = APIRouter(prefix="/v1", tags=["recognise"])

IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": {"type": "string", "format": "binary"}},
                }
            },
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["images"],
                    "properties": {"images": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            }
        },
    }
}


def to_out(result: Recognition, model_version: str) -> RecognitionOut:
    top_name = result.matches[0].name if result.known and result.matches else None
    return RecognitionOut(
        sku=result.sku,
        name=top_name,
        score=result.score,
        decision="known" if result.known else "unknown",
        threshold=result.threshold,
        model_version=model_version,
        matches=[MatchOut(sku=m.sku, name=m.name, score=m.score) for m in result.matches],
    )


async def _recognize(request: Request, state: AppState, field: str, single: bool) -> list[RecognitionOut]:
    settings = state.settings
    images = await read_images(request, settings, field, single)
    pixels = await decode_images(images, state.embedder.input_size, settings.max_pixels)
    if settings.tta_flip:
        vectors = flip_average(await state.batcher.submit(with_mirrored(pixels)))
    else:
        vectors = await state.batcher.submit(pixels)
    results = await state.recognize_batched(vectors)
    return [to_out(r, state.embedder.version) for r in results]


@router.post(
    "/recognize",
    response_model=RecognitionOut,
    openapi_extra=IMAGE_BODY,
    summary="Recognise one product crop (multipart field 'image', or a raw image body)",
)
async def recognize(request: Request, state: StateDep, _role: str | None = Checkout) -> RecognitionOut:
    return (await _recognize(request, state, "image", single=True))[0]


@router.post(
    "/recognize/batch",
    response_model=BatchRecognitionOut,
    openapi_extra=BATCH_BODY,
    summary="Recognise several crops (multipart field 'images'); answers in order",
)
async def recognize_batch(request: Request, state: StateDep, _role: str | None = Checkout) -> BatchRecognitionOut:
    results = await _recognize(request, state, "images", single=False)
    return BatchRecognitionOut(results=results, model_version=state.embedder.version)
