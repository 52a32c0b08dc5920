"""Distillation from trained embedders (teachers) into the one the service runs (the student).

Why: the student must stay the customer's single MobileNetV3Large with a 256-d head, but several
independently seeded models of the same recipe, their similarities averaged, may separate look-alikes
better than any one of them. Distillation carries that into one model; the teachers run in training only.

The target is relational (Park et al. 2019, "Relational Knowledge Distillation"): the student's cosine
similarities between a batch's photos are pulled towards the teachers' mean cosine similarity (the
similarity of their concatenated unit vectors over ``sqrt(n_teachers)``), so no teacher's space has to be
aligned with the student's or with another teacher's. Teachers see each photo clean, once per run; the
student sees the augmented view, so the target also asks for invariance to the augmentation.

A teacher must not have been trained on a SKU the student holds out (``check_teacher``): the fold
protocol's never-trained SKUs would otherwise leak into the student through the teacher.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from keras import ops

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger(__name__)


def teacher_embedding(per_teacher: Sequence[np.ndarray]) -> np.ndarray:
    """Unit vectors ``(n, d_i)`` of each teacher → ``(n, sum d_i)`` whose inner products are the teachers'
    mean cosine similarity."""
    if not per_teacher:
        raise ValueError("no teacher embeddings given")
    if len({len(v) for v in per_teacher}) != 1:
        raise ValueError(f"teachers embedded different numbers of photos: {[len(v) for v in per_teacher]}")
    unit = [v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12) for v in per_teacher]
    out: np.ndarray = (np.concatenate(unit, axis=1) / np.sqrt(len(unit))).astype(np.float32)
    return out


def similarity_distillation_loss(student: tf.Tensor, teacher: tf.Tensor) -> tf.Tensor:
    """Mean over ordered pairs ``i != j`` of ``(cos_student(i, j) - teacher(i) . teacher(j))**2``.

    ``student`` ``(b, d)`` is normalised here; ``teacher`` ``(b, D)`` comes from ``teacher_embedding``.
    """
    s = ops.cast(student, "float32")
    s = s / ops.maximum(ops.norm(s, axis=1, keepdims=True), 1e-12)
    t = ops.cast(teacher, "float32")
    n = ops.shape(s)[0]
    off_diagonal = 1.0 - ops.eye(n, dtype="float32")
    squared = ops.square(ops.matmul(s, ops.transpose(s)) - ops.matmul(t, ops.transpose(t))) * off_diagonal
    return ops.sum(squared) / ops.maximum(ops.sum(off_diagonal), 1.0)


def check_teacher(model_path: Path, student_held_out: Sequence[str]) -> None:
    """Raise when the teacher at ``model_path`` was trained on a SKU the student holds out."""
    from training.train import META_FILE

    meta_path = model_path.parent / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"teacher {str(model_path)!r} has no {META_FILE} beside it: cannot check its SKUs")
    teacher_held_out = set(json.loads(meta_path.read_text()).get("held_out_skus", []))
    leaked = sorted(set(student_held_out) - teacher_held_out)
    if leaked:
        raise ValueError(
            f"teacher {str(model_path)!r} was trained on SKUs the student holds out: {leaked}; "
            "train the teacher without them (in the fold protocol: the teacher run's same fold)"
        )


def teacher_targets(model_paths: Sequence[str], pixels: np.ndarray, held_out: Sequence[str], cache: Path) -> np.ndarray:
    """Every training photo (clean) through every teacher, as ``teacher_embedding``; cached at ``cache``
    (keyed by the teachers and the number of photos) so that a resumed run does not embed again."""
    key = {"teachers": [str(Path(p).resolve()) for p in model_paths], "photos": len(pixels)}
    key_path = cache.with_suffix(".json")
    if cache.is_file() and key_path.is_file() and json.loads(key_path.read_text()) == key:
        cached: np.ndarray = np.load(cache)
        return cached
    from training.features import embed_pixels
    from training.train import load_trained_model

    per_teacher = []
    for path in model_paths:
        check_teacher(Path(path), held_out)
        logger.info("teacher %s: embedding %d photos", path, len(pixels))
        per_teacher.append(embed_pixels(load_trained_model(path), pixels))
    targets = teacher_embedding(per_teacher)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, targets)
    key_path.write_text(json.dumps(key) + "\n")
    return targets
