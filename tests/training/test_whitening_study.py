"""Within-class whitening (training/whitening_study.py): what it does to a covariance, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.whitening_study import within_class_whitener


def labelled_cloud(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 6)) * 3.0
    spread = np.diag([4.0, 1.0, 0.5, 0.2, 0.1, 0.05])  # photos of one product vary mostly along axis 0
    labels = np.repeat(np.arange(5), 40)
    return centres[labels] + rng.normal(size=(200, 6)) @ spread, labels


def within_covariance(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Naive: the sum over classes of each photo's outer product around its class mean, over the count."""
    total = np.zeros((x.shape[1], x.shape[1]))
    for row, label in zip(x, labels, strict=True):
        d = row - x[labels == label].mean(axis=0)
        total += np.outer(d, d)
    return total / len(x)


def test_without_shrinkage_the_within_class_covariance_becomes_the_identity():
    x, labels = labelled_cloud()
    w = within_class_whitener(x, labels, shrink=0.0)
    mapped = (x - w.mean) @ w.projection  # before normalising
    assert np.allclose(within_covariance(mapped, labels), np.eye(6), atol=1e-8)
    assert np.allclose(w.projection, w.projection.T)


def test_shrinkage_keeps_more_of_the_original_geometry():
    x, labels = labelled_cloud()
    ratios = []
    for shrink in (0.0, 1.0, 100.0):
        w = within_class_whitener(x, labels, shrink)
        s = within_covariance((x - w.mean) @ w.projection, labels)
        ratios.append(s[0, 0] / s[5, 5])  # the noisiest direction against the quietest one
    assert ratios[0] == pytest.approx(1.0) and ratios[0] < ratios[1] < ratios[2]
    assert ratios[2] == pytest.approx(4.0**2 / 0.05**2, rel=0.5)  # strong shrinkage: close to no map at all


def test_applied_vectors_are_unit_length_and_bad_shrinkage_is_refused():
    x, labels = labelled_cloud(1)
    out = within_class_whitener(x, labels, 0.3).apply(x[:7])
    assert out.shape == (7, 6) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="got -0.5"):
        within_class_whitener(x, labels, -0.5)
