"""Lanes: each lane's photo of its empty counter, which its counter photos are segmented against, and its
settings (the expected item size) (logic: ``service.lanes``, storage: ``gallery.lanes``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from counter import DEFAULT_ITEM_AREA
from gallery.lanes import LANE_PATTERN, Background
from service import lanes
from service.deps import Checkout, Merchandiser, StateDep
from service.routes.openapi import file_field, multipart_body
from service.schemas import LaneBackgroundOut, LaneOut, LaneSettingsIn
from service.uploads import read_images

router = APIRouter(prefix="/v1/lanes", tags=["lanes"])

LaneId = Annotated[
    str, Path(pattern=LANE_PATTERN, description="Lane id: 1-64 of A-Z a-z 0-9 . _ -, starting alphanumeric")
]

BACKGROUND_BODY = multipart_body(
    {"image": file_field("The lane's empty counter, taken by its fixed camera")},
    required=["image"],
    raw_media_types=["image/*"],
)


def background_out(record: Background) -> LaneBackgroundOut:
    return LaneBackgroundOut(
        lane=record.lane,
        sha256=record.sha256,
        media_type=record.media_type,
        width=record.width,
        height=record.height,
        updated_at=record.updated_at,
    )


def lane_out(view: lanes.LaneView) -> LaneOut:
    return LaneOut(
        lane=view.lane,
        item_area=view.settings.item_area if view.settings else None,
        default_item_area=DEFAULT_ITEM_AREA,
        settings_updated_at=view.settings.updated_at if view.settings else None,
        background=background_out(view.background) if view.background else None,
    )


@router.get(
    "/{lane}",
    response_model=LaneOut,
    summary="What is stored for the lane: its settings and its background's record (404 when neither)",
)
async def get_lane(lane: LaneId, state: StateDep, _role: str | None = Checkout) -> LaneOut:
    return lane_out(await run_in_threadpool(lanes.lane_view, state.gallery, lane))


@router.put(
    "/{lane}/settings",
    response_model=LaneOut,
    summary="Store the lane's settings (JSON: item_area, the share of the photo a typical item covers; "
    "null: the default); replaces any earlier ones",
    responses={201: {"model": LaneOut, "description": "Stored; the lane had no settings"}},
)
async def put_settings(
    lane: LaneId, body: LaneSettingsIn, state: StateDep, response: Response, _role: str | None = Merchandiser
) -> LaneOut:
    view, created = await run_in_threadpool(lanes.store_settings, state.gallery, lane, body.item_area)
    response.status_code = 201 if created else 200
    return lane_out(view)


@router.put(
    "/{lane}/background",
    response_model=LaneBackgroundOut,
    openapi_extra=BACKGROUND_BODY,
    summary="Store the lane's empty-counter photo (multipart field 'image', or a raw image body); "
    "replaces any earlier one",
    responses={201: {"model": LaneBackgroundOut, "description": "Stored; the lane had none"}},
)
async def put_background(
    lane: LaneId, request: Request, state: StateDep, response: Response, _role: str | None = Merchandiser
) -> LaneBackgroundOut:
    ((data, _),) = await read_images(request, state.settings, "image", single=True)
    record, created = await run_in_threadpool(
        lanes.store_background, state.gallery, lane, data, state.settings.max_pixels
    )
    response.status_code = 201 if created else 200
    return background_out(record)


@router.get(
    "/{lane}/background",
    summary="The lane's stored empty-counter photo (its original bytes)",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}},
)
async def get_background(lane: LaneId, state: StateDep, _role: str | None = Checkout) -> Response:
    record, data = await run_in_threadpool(state.gallery.lanes.read, lane)  # 404 when none
    return Response(
        data,
        media_type=record.media_type,
        headers={
            "X-Background-Width": str(record.width),
            "X-Background-Height": str(record.height),
            "ETag": f'"{record.sha256}"',
        },
    )


@router.delete(
    "/{lane}/background",
    status_code=204,
    summary="Delete the lane's background (its photos are then segmented with the plain-counter fallback)",
)
async def delete_background(lane: LaneId, state: StateDep, _role: str | None = Merchandiser) -> Response:
    await run_in_threadpool(state.gallery.lanes.delete, lane)
    return Response(status_code=204)
