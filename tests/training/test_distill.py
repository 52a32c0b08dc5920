"""Distillation from trained teachers (training/distill.py): the pure pieces against naive loops, the
teacher leak check, and the per-photo index the dataset carries for it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.distill import check_teacher, similarity_distillation_loss, teacher_embedding


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_teacher_embedding_inner_products_are_the_teachers_mean_cosine():
    rng = np.random.default_rng(0)
    a, b = unit(rng, 5, 4), rng.normal(size=(5, 3)) * 3.0  # the second not yet unit length
    t = teacher_embedding([a, b])
    b_unit = b / np.linalg.norm(b, axis=1, keepdims=True)
    for i in range(5):
        for j in range(5):
            assert t[i] @ t[j] == pytest.approx((a[i] @ a[j] + b_unit[i] @ b_unit[j]) / 2, abs=1e-6)
    with pytest.raises(ValueError, match=r"different numbers of photos: \[5, 4\]"):
        teacher_embedding([a, b[:4]])


def test_similarity_distillation_loss_matches_a_naive_loop():
    rng = np.random.default_rng(1)
    student, teacher = rng.normal(size=(6, 8)) * 2.0, teacher_embedding([unit(rng, 6, 5), unit(rng, 6, 3)])
    s = student / np.linalg.norm(student, axis=1, keepdims=True)
    pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
    expected = np.mean([(s[i] @ s[j] - teacher[i] @ teacher[j]) ** 2 for i, j in pairs])
    got = float(np.asarray(similarity_distillation_loss(student.astype(np.float32), teacher)))
    assert got == pytest.approx(expected, rel=1e-5) and got > 0


def test_the_loss_is_zero_for_a_student_that_is_its_teacher():
    x = unit(np.random.default_rng(2), 4, 3).astype(np.float32)
    assert float(np.asarray(similarity_distillation_loss(5.0 * x, teacher_embedding([x])))) == pytest.approx(
        0, abs=1e-6
    )


def test_a_teacher_trained_on_a_sku_the_student_holds_out_is_refused(tmp_path):
    model = tmp_path / "model.keras"
    with pytest.raises(FileNotFoundError, match="training_meta.json"):
        check_teacher(model, ["Pear"])
    (tmp_path / "training_meta.json").write_text(json.dumps({"held_out_skus": ["Pear", "Plum"]}))
    check_teacher(model, ["Pear"])  # the teacher never saw Pear: fine
    with pytest.raises(ValueError, match=r"trained on SKUs the student holds out: \['Apple'\]"):
        check_teacher(model, ["Apple", "Pear"])


def test_the_dataset_can_carry_each_photos_index_beside_its_label():
    from training.sampling import PKSampler, image_dataset

    labels = np.repeat(np.arange(4), 3)
    pixels = np.zeros((12, 8, 8, 3), np.uint8)
    pixels[:, 0, 0, 0] = np.arange(12)  # each photo says which it is
    sampler = PKSampler(labels, 2, 2, seed=0)
    for x, y in image_dataset(pixels, labels, sampler, 0, None, seed=0, with_index=True):
        targets = np.asarray(y)
        assert targets.shape == (4, 2)
        assert (np.asarray(x)[:, 0, 0, 0] == targets[:, 1]).all() and (labels[targets[:, 1]] == targets[:, 0]).all()
