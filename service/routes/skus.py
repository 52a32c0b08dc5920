"""Merchandising: the SKU catalogue and its reference images."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gallery.money import Currency, format_minor
from gallery.types import SKU_PATTERN, Sku, SkuNotFound
from service import enrolment, thumbnails
from service.deps import Checkout, Merchandiser, StateDep
from service.errors import ApiError
from service.json_body import read_json_model
from service.routes.openapi import files_field, multipart_body, string_field
from service.schemas import EnrolOut, SkuIn, SkuOut, SkuPage
from service.thumbnails import THUMB_MAX, THUMB_MIN
from service.uploads import read_images

router = APIRouter(prefix="/v1/skus", tags=["catalogue"])

SkuId = Annotated[
    str, Path(pattern=SKU_PATTERN, description="SKU id: 1-64 of A-Z a-z 0-9 . _ -, starting alphanumeric")
]
ImageId = Annotated[int, Path(ge=1, le=2**62)]

ENROL_BODY = multipart_body(
    {"images": files_field(), "name": string_field("Name, if the SKU is new")}, required=["images"]
)


SKU_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": SkuIn.model_json_schema()}},
    }
}


def sku_out(sku: Sku, money: Currency, image_count: int | None = None) -> SkuOut:
    price = format_minor(sku.price_minor, money) if sku.price_minor is not None else None
    return SkuOut(
        sku=sku.sku,
        name=sku.name,
        price=price,
        currency=money.code,
        attributes=sku.attributes,
        image_ids=list(sku.image_ids),
        image_count=len(sku.image_ids) if image_count is None else image_count,
        created_at=sku.created_at,
        updated_at=sku.updated_at,
    )


@router.get("", response_model=SkuPage, summary="List SKUs, by id, a page at a time; q: search id and name")
async def list_skus(
    state: StateDep,
    _role: str | None = Checkout,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Only SKUs whose id or name contains this text (case-insensitive; prefix or substring)",
        ),
    ] = None,
) -> SkuPage:
    page = await run_in_threadpool(state.gallery.list_skus, offset, limit, q)
    money = state.gallery.currency
    return SkuPage(items=[sku_out(s, money, n) for s, n in page.items], total=page.total, offset=offset, limit=limit)


@router.get("/{sku}", response_model=SkuOut, summary="One SKU with its reference image ids")
async def get_sku(sku: SkuId, state: StateDep, _role: str | None = Checkout) -> SkuOut:
    return sku_out(await run_in_threadpool(state.gallery.get_sku, sku), state.gallery.currency)


CreateOnly = Annotated[
    str | None,
    Header(
        description=(
            "`*`: create only. If the SKU exists nothing is changed and the answer is 412 sku_exists "
            "(without it, PUT replaces an existing SKU's name, price and attributes)"
        )
    ),
]


def create_only(if_none_match: str | None) -> bool:
    return if_none_match is not None and "*" in {tag.strip() for tag in if_none_match.split(",")}


@router.put(
    "/{sku}",
    response_model=SkuOut,
    summary="Create or replace a SKU's metadata (If-None-Match: * to create only: 412 if it exists)",
    description="Replaces the SKU's name, price and attributes (attributes left out become {}). "
    "With `If-None-Match: *` the SKU is only created: an existing one is left as it is "
    "and the answer is 412 `sku_exists`, naming it.",
    responses={
        201: {"model": SkuOut, "description": "Created"},
        412: {"description": "If-None-Match: * and the SKU exists (sku_exists); nothing changed"},
    },
    openapi_extra=SKU_BODY,
)
async def put_sku(
    sku: SkuId,
    request: Request,
    state: StateDep,
    response: Response,
    if_none_match: CreateOnly = None,
    _role: str | None = Merchandiser,
) -> SkuOut:
    money = state.gallery.currency
    body = await read_json_model(request, SkuIn, {"currency": money.code})  # numbers as their decimal text
    if create_only(if_none_match):
        # Checked, then written: the store has no create-only write, so a SKU created by another
        # request between the two is still replaced (a window of milliseconds, not a form left open).
        try:
            await run_in_threadpool(state.gallery.get_sku, sku)
        except SkuNotFound:
            pass
        else:
            raise ApiError(
                412,
                "sku_exists",
                f"SKU {sku!r} already exists; nothing was changed "
                "(If-None-Match: * creates only; send PUT without it to replace)",
            )
    created = await run_in_threadpool(state.gallery.put_sku, sku, body.name, body.price, body.attributes)
    response.status_code = 201 if created else 200
    return sku_out(await run_in_threadpool(state.gallery.get_sku, sku), money)


@router.delete("/{sku}", status_code=204, summary="Delete a SKU and all its reference images")
async def delete_sku(sku: SkuId, state: StateDep, _role: str | None = Merchandiser) -> Response:
    await run_in_threadpool(state.gallery.delete_sku, sku)
    return Response(status_code=204)


@router.post(
    "/{sku}/images",
    response_model=EnrolOut,
    status_code=201,
    openapi_extra=ENROL_BODY,
    summary="Enrol reference images (multipart field 'images'); the SKU is created if new; a photo already "
    "a reference image of the SKU is not stored twice (200 when nothing was new)",
    responses={200: {"model": EnrolOut, "description": "Every photo was already there"}},
)
async def enrol_images(
    sku: SkuId, request: Request, state: StateDep, response: Response, _role: str | None = Merchandiser
) -> EnrolOut:
    images = await read_images(request, state.settings, "images", single=False)
    form = await request.form() if request.headers.get("content-type", "").startswith("multipart/") else {}
    given = form.get("name")
    name = given if isinstance(given, str) else None
    if name is not None and not 1 <= len(name) <= 200:
        raise ApiError(422, "invalid_name", f"name must be 1-200 characters, received {len(name)}")
    result = await enrolment.enrol_through_batcher(state, sku, [data for data, _ in images], name)
    if len(result.already_present) == len(set(result.image_ids)):
        response.status_code = 200  # nothing new was stored
    return EnrolOut(
        sku=sku,
        image_ids=result.image_ids,
        already_present=result.already_present,
        model_version=state.embedder.version,
    )


ThumbSize = Annotated[
    int | None,
    Query(
        ge=THUMB_MIN,
        le=THUMB_MAX,
        description=(
            f"A JPEG thumbnail whose longest side is at most this many pixels ({THUMB_MIN}-{THUMB_MAX}); "
            "without it, the stored file"
        ),
    ),
]


@router.get(
    "/{sku}/images/{image_id}",
    summary="The stored reference image file, or a thumbnail of it (size)",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, 304: {"description": "Unchanged"}},
)
async def get_image(
    sku: SkuId,
    image_id: ImageId,
    request: Request,
    state: StateDep,
    size: ThumbSize = None,
    _role: str | None = Checkout,
) -> Response:
    served = await run_in_threadpool(
        thumbnails.read_image,
        state.gallery,
        sku,
        image_id,
        size,  # 404 if deleted
        request.headers.get("if-none-match"),
        state.settings.max_pixels,
    )
    headers = {"ETag": served.etag, "Cache-Control": thumbnails.CACHE_CONTROL, "Vary": thumbnails.VARY}
    if served.data is None:
        return Response(status_code=304, headers=headers)
    return Response(served.data, media_type=served.media_type, headers=headers)


@router.delete("/{sku}/images/{image_id}", status_code=204, summary="Delete one reference image")
async def delete_image(sku: SkuId, image_id: ImageId, state: StateDep, _role: str | None = Merchandiser) -> Response:
    await run_in_threadpool(state.gallery.delete_image, sku, image_id)
    return Response(status_code=204)
