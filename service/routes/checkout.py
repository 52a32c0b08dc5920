"""Checkout: a priced basket from several crops or one counter photo (logic: ``service.checkout``)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile

from gallery.lanes import LANE_PATTERN
from gallery.money import format_minor
from service import checkout
from service.deps import Checkout, StateDep
from service.errors import ApiError
from service.routes.openapi import file_field, files_field, multipart_body, string_field
from service.schemas import AttentionOut, CheckoutItemOut, CheckoutLineOut, CheckoutOut
from service.uploads import read_images

router = APIRouter(prefix="/v1", tags=["recognise"])

CHECKOUT_BODY = multipart_body(
    {
        "photo": file_field("One photo of the whole counter (needs the counter extra: OpenCV)"),
        "lane": string_field("The lane the photo is from", pattern=LANE_PATTERN),
        "images": files_field("Crops, one item each (instead of 'photo')"),
    }
)


def to_out(result: checkout.CheckoutResult, model_version: str) -> CheckoutOut:
    money = result.currency

    def text(minor: int | None) -> str | None:
        return None if minor is None else format_minor(minor, money)

    return CheckoutOut(
        items=[
            CheckoutItemOut(
                box=list(c.box) if c.box else None,
                sku=c.item.sku,
                name=c.item.name,
                score=c.item.score,
                decision="known" if c.item.known else "unknown",
                unit_price=text(c.item.unit_minor),
            )
            for c in result.items
        ],
        lines=[
            CheckoutLineOut(
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price=format_minor(line.unit_minor, money),
                amount=format_minor(line.amount_minor, money),
            )
            for line in result.basket.lines
        ],
        needs_attention=[
            AttentionOut(index=a.index, reason=a.reason, message=a.message) for a in result.basket.attention
        ],
        total=format_minor(result.basket.total_minor, money),
        currency=money.code,
        model_version=model_version,
        segmentation=result.segmentation,
        note=result.note,
    )


@router.post(
    "/checkout",
    response_model=CheckoutOut,
    openapi_extra=CHECKOUT_BODY,
    summary="A priced basket: one counter photo (field 'photo', optional 'lane') or crops (field 'images')",
)
async def post_checkout(request: Request, state: StateDep, _role: str | None = Checkout) -> CheckoutOut:
    settings = state.settings
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"request content type {content_type or 'none'!r}; accepted: "
            "multipart/form-data with field 'photo' (one counter photo) or 'images' (crops)",
        )
    form = await request.form(
        max_files=settings.max_images_per_request, max_fields=16, max_part_size=settings.max_upload_bytes
    )
    photos = [p for p in form.getlist("photo") if isinstance(p, UploadFile)]
    crops = [p for p in form.getlist("images") if isinstance(p, UploadFile)]
    if bool(photos) == bool(crops):
        raise ApiError(
            422,
            "photo_or_images",
            "send either field 'photo' (one counter photo) or field 'images' "
            f"(crops), not {'both' if photos else 'neither'}; received fields {sorted(form.keys())}",
        )
    lane = form.get("lane")
    if lane is not None and not (isinstance(lane, str) and re.fullmatch(LANE_PATTERN, lane)):  # not "lane1\n"
        shown = repr(lane)[:80] if isinstance(lane, str) else "a file"
        raise ApiError(
            422,
            "invalid_lane",
            f"lane {shown} is not a lane id: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
        )
    if crops:
        if lane is not None:
            raise ApiError(422, "lane_without_photo", "field 'lane' goes with a counter 'photo', not with crops")
        images = await read_images(request, settings, "images", single=False)
        result = await checkout.checkout_crops(state, [data for data, _ in images])
    else:
        if len(photos) > 1:
            raise ApiError(
                422,
                "too_many_photos",
                f"expected one counter photo in field 'photo', received "
                f"{len(photos)}; send several crops in field 'images' instead",
            )
        await checkout.require_segmenter(settings.counter_segmenter)  # 501 naming the extra, before reading the photo
        ((data, _),) = await read_images(request, settings, "photo", single=True)
        result = await checkout.checkout_photo(state, data, lane)
    return to_out(result, state.embedder.version)
