"""Shared fixtures: a real (untrained, small) LiteRT model built once per session, real JPEGs."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TEST_INPUT_SIZE = 96
GROCERY_ENV = "SKULENS_GROCERY_DIR"
DEFAULT_GROCERY = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grocery"


def grocery_dir() -> Path | None:
    path = Path(os.environ.get(GROCERY_ENV, DEFAULT_GROCERY))
    return path if (path / "train").is_dir() else None


@pytest.fixture(scope="session")
def grocery() -> Path:
    path = grocery_dir()
    if path is None:
        pytest.skip(
            f"grocery photos not found: set {GROCERY_ENV} to the folder holding train/ and val/ "
            f"(looked in {os.environ.get(GROCERY_ENV, DEFAULT_GROCERY)})"
        )
    return path


def export_tiny_model(directory: Path, seed: int) -> Path:
    """An untrained MobileNetV3Small + 256-d head at 96 px, exported to LiteRT (a real conversion)."""
    from embedder.export import export_model
    from embedder.model import build_embedding_model

    model = build_embedding_model("mobilenet_v3_small", weights=None, input_size=TEST_INPUT_SIZE, seed=seed)
    export_model(
        model,
        directory,
        backbone="mobilenet_v3_small",
        input_size=TEST_INPUT_SIZE,
        embedding_dim=256,
        weights_origin="random initialisation",
        trained=False,
    )
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return export_tiny_model(tmp_path_factory.mktemp("model"), seed=1)


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory) -> Path:
    """A second, different untrained model: another version id."""
    return export_tiny_model(tmp_path_factory.mktemp("model2"), seed=2)


@pytest.fixture(scope="session")
def tiny_embedder(tiny_model_dir):
    from embedder.artifact import load_artifact
    from embedder.runtime import LiteRTEmbedder

    return LiteRTEmbedder(load_artifact(tiny_model_dir), num_threads=2)


def make_jpeg(
    seed: int, size: tuple[int, int] = (160, 120), quality: int = 90, fmt: str = "JPEG", mode: str = "RGB"
) -> bytes:
    """A real, distinct JPEG (or other format): coloured blocks and stripes from a seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 256, size=(max(1, h // 16), max(1, w // 16), 3), dtype=np.uint8)
    image = Image.fromarray(base, "RGB").resize((w, h), Image.Resampling.NEAREST)
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.fixture
def jpeg():
    return make_jpeg


# A real PostgreSQL server (session), a database per test, and ``catalog``: each test once per store.
from tests.pg_server import catalog, pg_catalog_url, pg_server  # noqa: E402, F401
