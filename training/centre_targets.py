"""The item-centre model's training targets (``training/centres.py``): pure NumPy, testable on tiny arrays."""

from __future__ import annotations

import numpy as np


def centre_targets(boxes: list[np.ndarray], height: int, width: int, stride: int) -> np.ndarray:
    """``(n, height // stride, width // stride, 1)`` float32 heatmaps: for each photo's boxes (``(k, 4)``
    ``x0, y0, x1, y1`` in input pixels) a Gaussian at each box's centre, exactly 1 at its cell, its spread a
    sixth of the box's shorter side (at least one cell); where two overlap, the higher."""
    grid_h, grid_w = height // stride, width // stride
    ys, xs = np.mgrid[0:grid_h, 0:grid_w].astype(np.float32)
    out = np.zeros((len(boxes), grid_h, grid_w, 1), np.float32)
    for n, photo_boxes in enumerate(boxes):
        for x0, y0, x1, y1 in np.asarray(photo_boxes, np.float32).reshape(-1, 4):
            cx, cy = (x0 + x1) / 2 / stride - 0.5, (y0 + y1) / 2 / stride - 0.5  # cell centres at (i + 0.5) * stride
            sigma = max(1.0, float(min(x1 - x0, y1 - y0)) / stride / 6)
            peak = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
            peak[int(np.clip(round(cy), 0, grid_h - 1)), int(np.clip(round(cx), 0, grid_w - 1))] = 1.0
            out[n, ..., 0] = np.maximum(out[n, ..., 0], peak)
    return out


def flip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """``(k, 4)`` boxes of a photo mirrored left to right (``width`` px wide)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
