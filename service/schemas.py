"""Request and response models (pydantic)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, WithJsonSchema, field_validator

from gallery.lanes import ITEM_AREA_MAX, ITEM_AREA_MIN
from gallery.money import InvalidAmount, currency, to_minor
from gallery.types import SKU_PATTERN

#: A price in the API: a decimal string in the currency's major unit ("2.35"); on input a JSON
#: number is accepted too (read as its decimal text, never as a float).
PRICE_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
PriceText = Annotated[
    str, Field(pattern=PRICE_PATTERN, examples=["2.35"], description="Decimal string in the currency's major unit")
]
PriceInput = Annotated[
    int | None,
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "pattern": PRICE_PATTERN}, {"type": "number", "minimum": 0}, {"type": "null"}],
            "description": 'Price in the currency\'s major unit: a decimal string ("2.35") or a JSON number; '
            "no more decimals than the currency has; null: no price.",
            "examples": ["2.35"],
        }
    ),
]


class MatchOut(BaseModel):
    sku: str
    name: str
    score: float


class RecognitionOut(BaseModel):
    sku: str | None = Field(description="The recognised SKU, or null when unknown.")
    name: str | None
    score: float = Field(
        description="The open-set score compared with threshold: the best match's similarity less the model's "
        "adjustments (beta × how close the SKU's nearest look-alike SKU sits, gamma × the second SKU's "
        "similarity; docs/model_card.md)."
    )
    similarity: float = Field(description="Cosine similarity of the best match (-1..1).")
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
    price: PriceInput = None  # after validation: minor units of the context's currency
    attributes: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=64)

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: object, info: ValidationInfo) -> int | None:
        """Minor units of the currency in the validation context (``{"currency": "EUR"}``)."""
        if value is None:
            return None
        code = (info.context or {}).get("currency")
        if code is None:
            raise ValueError("no currency to read the price in (validate with context={'currency': ...})")
        try:
            return to_minor(value, currency(code))
        except InvalidAmount as exc:
            raise ValueError(
                f'{exc}; expected a decimal string such as "2.35" or a JSON number, not negative, finite'
            ) from None


class SkuOut(BaseModel):
    sku: str = Field(pattern=SKU_PATTERN)
    name: str
    price: PriceText | None = Field(description="Decimal string in the currency's major unit; null: no price.")
    currency: str = Field(description="ISO 4217 code of the price.")
    attributes: dict[str, Any]
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
    image_ids: list[int] = Field(description="One per photo posted, in order.")
    already_present: list[int] = Field(
        default_factory=list, description="Reference images that already held one of the photos (not stored twice)."
    )
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


class CheckoutItemOut(BaseModel):
    box: list[int] | None = Field(
        description="[x0, y0, x1, y1] in the photo's pixels (EXIF orientation applied); null for a posted crop."
    )
    sku: str | None
    name: str | None
    score: float = Field(description="The open-set score compared with the threshold (as RecognitionOut.score).")
    decision: Literal["known", "unknown"]
    unit_price: PriceText | None = Field(description="The SKU's price; null when unknown or without a price.")


class CheckoutLineOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: PriceText
    amount: PriceText


class AttentionOut(BaseModel):
    index: int | None = Field(description="The item's index in 'items'; null when it concerns the whole request.")
    reason: Literal["unknown", "no_price", "no_items_found"]
    message: str


class CheckoutOut(BaseModel):
    items: list[CheckoutItemOut] = Field(
        description="One per item, in reading order (rows top to bottom, left to "
        "right) for a photo, in posted order for crops."
    )
    lines: list[CheckoutLineOut] = Field(description="Known, priced items grouped by SKU.")
    needs_attention: list[AttentionOut] = Field(description="Items left out of the total: unknown, or no price.")
    total: PriceText = Field(description="The sum of the lines' amounts.")
    currency: str
    model_version: str
    segmentation: Literal["lane_background", "plain_counter"] | None = Field(
        description="How the photo was cut into items: against the lane's stored empty counter ('lane_background') "
        "or the colour of the photo's border ('plain_counter'); null for crops."
    )
    note: str | None = Field(default=None, description="Why the plain-counter fallback was used, when it was.")


class LaneBackgroundOut(BaseModel):
    lane: str
    sha256: str = Field(description="SHA-256 of the stored photo's bytes")
    media_type: str
    width: int = Field(description="Pixels, EXIF orientation applied; a lane's counter photos must have this size")
    height: int
    updated_at: float


ITEM_AREA_TEXT = (
    "The share of the lane's counter photo a typical item covers (the height of its fixed camera gives it), "
    "which the touching-items splitter expects: 0 (no expected size: touching items are split by their shape "
    f"alone) or from {ITEM_AREA_MIN} to {ITEM_AREA_MAX}"
)


class LaneSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_area: float | None = Field(
        strict=True,  # not true, not "0.02"
        allow_inf_nan=False,
        examples=[0.02],
        description=f"{ITEM_AREA_TEXT}; null: the global default.",
    )


class LaneOut(BaseModel):
    lane: str
    item_area: float | None = Field(description=f"{ITEM_AREA_TEXT}; null: not set, default_item_area is used.")
    default_item_area: float = Field(
        description="The global default, which a lane's counter photos are segmented with while its item_area is null."
    )
    settings_updated_at: float | None = Field(description="When the lane's settings were last stored; null: never.")
    background: LaneBackgroundOut | None = Field(
        description="The lane's stored empty counter (its photo: GET /v1/lanes/{lane}/background); null: none, its "
        "counter photos are segmented with the plain-counter fallback."
    )


class WhoAmIOut(BaseModel):
    role: str = Field(description="The presented key's role; 'admin' on a server without keys (open to all).")
    keys_required: bool = Field(description="Whether this server checks API keys.")
    roles: list[str] = Field(description="Every role, each allowed all that the ones before it are.")
