"""Item centres from a learned, class-agnostic heatmap (issue 12): one peak per item, whatever the product.

A small network (``training/centres.py``: MobileNetV3Large-minimalistic's ImageNet layers up to stride 16,
frozen, and a CenterNet-style head trained on synthetic counter scenes of products it is not measured on)
maps a counter photo to a heatmap that peaks at each item's centre. ``LearnedSegmenter`` keeps the
classical segmenter's foreground (the difference against the lane's empty counter, ``counter/segment.py``)
and cuts each blob at the centres inside it (``counter.watershed.split_at_centres``: a watershed on the heatmap) instead of the
classical cues' guess at how many items it holds. The model is a LiteRT file with a JSON beside it
(``counter/centre_model/``); no TensorFlow is needed to use it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from counter.segment import BackgroundSegmenter, SegmenterConfig, lane_config
from counter.watershed import Centres

DEFAULT_CENTRE_MODEL = Path(__file__).parent / "centre_model"
MODEL_FILE, INFO_FILE = "centres.tflite", "centres.json"


@dataclass(frozen=True)
class CentreModelInfo:
    """What ``centres.json`` says of the file: its input size, the heatmap's stride, how peaks are read."""

    input_width: int
    input_height: int
    stride: int
    threshold: float  # a heatmap peak at least this high is an item's centre
    window: int  # px of the working copy: peaks closer than about half this are one
    valley: float  # a peak whose ridge to a higher one stays above this share of its height is the same item
    provenance: dict[str, Any]

    @classmethod
    def read(cls, directory: Path) -> CentreModelInfo:
        values = json.loads((directory / INFO_FILE).read_text())
        return cls(
            int(values["input_width"]),
            int(values["input_height"]),
            int(values["stride"]),
            float(values["threshold"]),
            int(values["window"]),
            float(values.get("valley", 1.0)),
            dict(values.get("provenance", {})),
        )


def local_peaks(heat: np.ndarray, threshold: float, window: int, valley: float = 1.0) -> list[tuple[int, int]]:
    """``(y, x)`` of the heatmap's local maxima (over a ``window`` px square) at least ``threshold`` high, highest
    first; a plateau of equal maxima counts once, at its centre. A peak joined to a higher one by a ridge that
    nowhere drops below ``valley`` times its own height is a second summit of the same item and is dropped
    (1: none is)."""
    if heat.size == 0 or float(heat.max()) < threshold:
        return []
    top = (heat >= cv2.dilate(heat, np.ones((window, window), np.uint8))) & (heat >= threshold)
    count, _, _, centroids = cv2.connectedComponentsWithStats(top.astype(np.uint8), connectivity=8)
    found = sorted(
        ((int(c[1] + 0.5), int(c[0] + 0.5)) for c in centroids[1:count]), key=lambda p: -float(heat[p[0], p[1]])
    )
    kept: list[tuple[int, int]] = []
    for peak in found:
        floor = valley * float(heat[peak[0], peak[1]])
        if all(_lowest_between(heat, peak, other) < floor for other in kept):
            kept.append(peak)
    return kept


def _lowest_between(heat: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> float:
    """The lowest heat on the straight line from ``a`` to ``b`` (``(y, x)``)."""
    steps = max(abs(a[0] - b[0]), abs(a[1] - b[1])) + 1
    ys = np.linspace(a[0], b[0], steps).round().astype(int)
    xs = np.linspace(a[1], b[1], steps).round().astype(int)
    return float(heat[ys, xs].min())


class CentreDetector:
    """The LiteRT centre model: ``heat(photo)`` at the photo's own size, ``centres(photo)`` its peaks."""

    def __init__(self, directory: Path = DEFAULT_CENTRE_MODEL, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        path = Path(directory)
        if not (path / MODEL_FILE).is_file() or not (path / INFO_FILE).is_file():
            raise FileNotFoundError(f"a centre model is {MODEL_FILE} + {INFO_FILE}; {path} has not both")
        self.info = CentreModelInfo.read(path)
        self._interpreter = Interpreter(model_path=str(path / MODEL_FILE), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._lock = threading.Lock()  # an interpreter is not thread-safe

    def heat(self, photo: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """float32 item-centre heatmap (0-1) of ``photo`` ((H, W, 3) uint8 RGB), ``(H, W)`` or ``size`` (w, h)."""
        model_input = (self.info.input_width, self.info.input_height)
        small = cv2.resize(photo, model_input, interpolation=cv2.INTER_AREA)
        with self._lock:
            self._interpreter.set_tensor(self._input, np.ascontiguousarray(small[None], np.uint8))
            self._interpreter.invoke()
            heat = np.asarray(self._interpreter.get_tensor(self._output), np.float32)[0, ..., 0]
        resized: np.ndarray = cv2.resize(heat, size or (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_LINEAR)
        return resized

    def centres(self, photo: np.ndarray, size: tuple[int, int] | None = None) -> Centres:
        """The items' centres ``(y, x)`` and the heatmap, at ``photo``'s size or ``size`` (w, h)."""
        heat = self.heat(photo, size)
        return Centres(local_peaks(heat, self.info.threshold, self.info.window, self.info.valley), heat)


class LearnedSegmenter(BackgroundSegmenter):
    """The classical foreground, each blob cut at the learned centres inside it."""

    def __init__(self, detector: CentreDetector, config: SegmenterConfig | None = None):
        super().__init__(config or SegmenterConfig())
        self.detector = detector

    def with_item_area(self, item_area: float) -> LearnedSegmenter:
        config = lane_config(self.config, item_area)
        return self if config is self.config else LearnedSegmenter(self.detector, config)

    def centres(self, photo: np.ndarray, small: np.ndarray) -> Centres:
        return self.detector.centres(photo, (small.shape[1], small.shape[0]))
