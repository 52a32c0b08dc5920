"""Request and response models (pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gallery.types import SKU_PATTERN


class MatchOut(BaseModel):
    sku: str
    name: str
    score: float


class RecognitionOut(BaseModel):
    sku: str | None = Field(description="The recognised SKU, or null when unknown.")
    name: str | None
    score: float = Field(description="Cosine similarity of the best match (-1..1).")
    decision: Literal["known", "unknown"]
    threshold: float
    matches: list[MatchOut]
    model_version: str


class BatchRecognitionOut(BaseModel):
    results: list[RecognitionOut]
    model_version: str


class SkuIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    price: float | None = Field(None, ge=0, le=1e9)
    attributes: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=64)


class SkuOut(BaseModel):
    sku: str = Field(pattern=SKU_PATTERN)
    name: str
    price: float | None
    attributes: dict
    image_ids: list[int] = Field(default_factory=list)
    image_count: int
    created_at: float
    updated_at: float


class SkuPage(BaseModel):
    items: list[SkuOut]
    total: int
    offset: int
    limit: int


class EnrolOut(BaseModel):
    sku: str
    image_ids: list[int]
    model_version: str


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    model_version: str | None = None
    skus: int | None = None
    reference_images: int | None = None
    detail: str | None = None
