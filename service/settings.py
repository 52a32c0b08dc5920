"""Every setting of skulens, each with an environment variable ``SKULENS_<NAME>``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gallery.money import currency as iso_currency
from gallery.references import DEFAULT_VIEWS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SKULENS_", extra="ignore")

    data_dir: Path = Field(Path("skulens-data"), description="Catalogue, reference images and indexes live here.")
    catalog: str | None = Field(
        None,
        description="Where the catalogue is: not set, the embedded SQLite in the data directory; "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, PostgreSQL shared by replicas "
        "(the postgres extra; docs/deployment.md).",
    )
    model: Path | None = Field(
        None,
        description="Model folder (model.tflite + model.json), or a shipped model's name: float32 (the "
        "default) or int8_float_head (about 1.5x the requests per core, a little less accurate: docs/model_card.md).",
    )
    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes (each loads the model and index).")
    threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Open-set threshold on the decision score (the cosine similarity less the model's lookalike "
        "and runner-up adjustments); default: the gallery's calibrated value for that score, else the model's, else 0.5.",
    )
    tta_flip: bool = Field(
        False,
        description="Recognition also embeds the mirrored crop and averages the two (twice the inference "
        "per query; see docs/model_card.md for the measured gain). Reference images are not.",
    )
    catalogue_views: int = Field(
        DEFAULT_VIEWS,
        ge=0,
        le=64,
        description="Synthetic store-like views embedded beside each studio photo (a packshot on white) at "
        "enrolment and re-index, stored as views of that one reference image; 0 turns them off.",
    )
    currency: str | None = Field(
        None,
        description="ISO 4217 code of the catalogue's prices (kept exactly, in its minor units); a catalogue "
        "holding prices in another currency is refused at start-up. Not set: the catalogue's own "
        "(EUR for a new one); a catalogue of the first release that has prices needs it set to be "
        "migrated, as its prices say no currency.",
    )
    top_k: int = Field(5, ge=1, le=100, description="Matches returned per query (one per SKU).")
    counter_recognised_split: bool = Field(
        True,
        description="A counter photo's uncertain blobs (a part two items big; with the classical segmenter also two "
        "small neighbours) are also cut other ways and the recogniser keeps the cut whose parts it recognises clearly "
        "better (the proposed parts' crops embedded in the same batch; the settings fitted for each segmenter's cut); "
        "off: the segmenter's items alone. docs/checkout.md.",
    )
    counter_segmenter: Literal["classical", "learned"] = Field(
        "learned",
        description="How a counter photo's blobs are cut into items: the classical cues (outline concavities, "
        "distance peaks, edges, colours), or a learned class-agnostic item-centre detector (counter/centres.py, "
        "a small LiteRT model) cutting each blob where one item's centre gives way to the next. docs/checkout.md.",
    )
    index_kind: Literal["flat", "hnsw"] = Field("flat", description="Exact (flat) or approximate (hnsw) search.")
    num_threads: int = Field(2, ge=1, le=64, description="LiteRT inference threads.")
    search_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="FAISS (OpenMP) threads per search, set in each searching thread; 1 leaves the cores to inference.",
    )
    max_batch: int = Field(16, ge=1, le=256, description="Micro-batching: most images embedded in one call.")
    max_wait_ms: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="Micro-batching: longest wait to fill a batch; 0 takes what queued during the last inference.",
    )
    max_queue: int = Field(256, ge=1, description="Images waiting for inference before requests get 503.")
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 beyond).")
    max_pixels: int = Field(40_000_000, ge=1, description="Largest image accepted, in pixels, checked before decoding.")
    max_images_per_request: int = Field(32, ge=1, le=1024, description="Most images in one batch or enrol request.")
    api_keys_file: Path | None = Field(
        None, description="File of 'role key' lines; roles: checkout, merchandiser, admin."
    )
    insecure: bool = Field(False, description="Allow binding a non-loopback address without API keys.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (closed by default).")
    log_level: str = Field("info", description="Python logging level.")

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str | None) -> str | None:
        return None if value is None else iso_currency(value).code  # ValueError (unknown code) lists the known ones
