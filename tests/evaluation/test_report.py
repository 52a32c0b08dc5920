"""The HTML report and the Markdown tables."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from embedder.runtime import Embedder
from evaluation.data import scan_folder
from evaluation.evaluate import evaluate_model
from evaluation.report import (
    comparison_tables,
    fmt,
    histogram_svg,
    markdown,
    thumbnail,
    write_report,
)
from tests.conftest import make_jpeg


class ColourEmbedder(Embedder):
    """A stand-in model: mean colour of four quadrants, projected and normalised (no LiteRT needed)."""

    version, embedding_dim, input_size = "colour", 12, 32

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        pixels = self.check_pixels(pixels).astype(np.float32)
        quads = [pixels[:, :16, :16], pixels[:, :16, 16:], pixels[:, 16:, :16], pixels[:, 16:, 16:]]
        v = np.concatenate([q.mean(axis=(1, 2)) for q in quads], axis=1) - 128
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)


@pytest.fixture
def result(tmp_path):
    for root, count in (("gallery", 3), ("queries", 2)):
        for i, sku in enumerate(["apple", "milk", "pear"]):
            (tmp_path / root / sku).mkdir(parents=True)
            for j in range(count):
                (tmp_path / root / sku / f"{j}.jpg").write_bytes(make_jpeg(10 * i + j, quality=70 + 10 * j))
    return evaluate_model(
        ColourEmbedder(),
        "colour",
        scan_folder(tmp_path / "gallery"),
        scan_folder(tmp_path / "queries"),
        unknown_skus={"pear"},
        groups={"seen": {"apple", "milk"}, "held-out": {"pear"}},
        conditions=("dark",),
        model_info={"backbone": "none"},
    )


def test_report_round_trip(tmp_path, result):
    path = write_report(result, tmp_path / "out" / "report.html", settings={"gallery": "g", "seed": 0})
    text = path.read_text()
    for section in (
        "id='metrics'",
        "Closed set",
        "Open set",
        "Robustness",
        "id='histograms'",
        "id='per-sku'",
        "Most confused pairs",
        "id='examples'",
    ):
        assert section in text
    assert text.count("<svg") == 2  # known/unknown and right/wrong histograms
    assert text.count("data:image/jpeg;base64,") == text.count("<figure") > 0  # every thumbnail inline
    assert len(re.findall(r'class="ex"', text)) == 6 + 2  # 6 closed-set queries, 2 unknown ones
    assert "Unknown products that looked most known" in text
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained
    assert "AUROC" in text and "apple" in text


def test_comparison_tables_side_by_side(result):
    text = comparison_tables([result, result])
    assert "| metric | colour | colour |" in text
    for heading in (
        "### Models",
        "### Closed set",
        "### Open set",
        "### Robustness",
        "### Per-SKU top-1",
        "### Most confused pairs: colour",
    ):
        assert heading in text
    assert "| dark |" in text and "top-1 on held-out SKUs" in text


def test_fmt_truncates_and_shows_missing_values():
    assert fmt(0.84999) == "0.8499" and fmt(1.0) == "1.0000" and fmt(0.123456, 2) == "0.12"
    assert fmt(float("nan")) == "n/a" and fmt(None) == "n/a"


def test_histogram_and_markdown_helpers(tmp_path):
    svg = histogram_svg({"known": [0.9, 0.8, 0.85], "unknown": [0.3, 0.5]}, threshold=0.6)
    assert svg.startswith("<svg") and "threshold 0.600" in svg and "known (n=3)" in svg
    assert "no scores" in histogram_svg({"known": []})
    assert markdown((["a", "b"], [["1", "2"]])) == "| a | b |\n|---|---|\n| 1 | 2 |"
    photo = tmp_path / "p.jpg"
    photo.write_bytes(make_jpeg(1, size=(400, 300)))
    assert thumbnail(photo, 64).startswith("data:image/jpeg;base64,")


def test_report_without_open_set_or_robustness(tmp_path, result):
    from dataclasses import replace

    plain = replace(result, open=None, robustness=[])
    text = write_report(plain, Path(tmp_path) / "plain.html").read_text()
    assert "Open set" not in text and "Robustness" not in text and text.count("<svg") == 1
