"""The gallery keeps every SKU's lookalike current through enrolment, deletion, re-opening and other
processes' writes, and decides on the lookalike-adjusted score (real SQLite/PostgreSQL, real FAISS)."""

from __future__ import annotations

import numpy as np
import pytest

from gallery.gallery import Gallery, ImageUpload
from gallery.lookalike import label_lookalikes
from tests.conftest import make_jpeg

DIM = 8
BETA = 0.5  # a gallery of beta 0 keeps no lookalikes (its decision does not use them)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def around(direction: int, seed: int, spread: float = 0.3) -> np.ndarray:
    base = np.zeros(DIM)
    base[direction] = 1.0
    return unit(base + spread * np.random.default_rng(seed).normal(size=DIM))


def enrol(g: Gallery, sku: str, vectors: list[np.ndarray]) -> list[int]:
    uploads = [
        ImageUpload(make_jpeg(hash((sku, i)) % 10_000, size=(32, 24)), "image/jpeg", 32, 24)
        for i in range(len(vectors))
    ]
    return list(g.enrol(sku, uploads, np.stack(vectors)))


def expected(enrolled: dict[str, list[np.ndarray]]) -> dict[str, float]:
    skus = sorted(s for s, v in enrolled.items() if v)
    vectors = np.concatenate([np.stack(enrolled[s]) for s in skus])
    labels = np.concatenate([[i] * len(enrolled[s]) for i, s in enumerate(skus)])
    return dict(zip(skus, label_lookalikes(vectors, labels, len(skus)).tolist()))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_lookalikes_follow_enrolment_deletion_and_reopening(tmp_path, catalog, kind):
    g = Gallery(tmp_path, "model-a", DIM, kind, catalog=catalog, lookalike_beta=BETA)
    enrolled = {
        "gala": [around(0, s) for s in range(3)],
        "pink-lady": [around(0, s, 0.6) for s in range(10, 13)],  # near gala
        "oat-milk": [around(3, s) for s in range(20, 22)],
    }
    ids = {sku: enrol(g, sku, vectors) for sku, vectors in enrolled.items()}
    for sku, value in expected(enrolled).items():
        assert g.lookalike(sku) == pytest.approx(value, abs=1e-5)
    assert g.lookalike("gala") > 0.5 > g.lookalike("oat-milk")

    g.delete_image("pink-lady", ids["pink-lady"][0])
    enrolled["pink-lady"].pop(0)
    g.delete_sku("gala")
    del enrolled["gala"]
    for sku, value in expected(enrolled).items():
        assert g.lookalike(sku) == pytest.approx(value, abs=1e-5)
    assert g.lookalike("gala") == 0.0  # gone: nothing to be confused with
    g.close()  # snapshot written

    reopened = Gallery(tmp_path, "model-a", DIM, kind, catalog=catalog, lookalike_beta=BETA)
    try:
        for sku, value in expected(enrolled).items():
            assert reopened.lookalike(sku) == pytest.approx(value, abs=1e-5)
    finally:
        reopened.close(snapshot=False)


def test_another_process_enrolment_reaches_the_lookalikes(tmp_path, catalog):
    writer = Gallery(tmp_path, "model-a", DIM, catalog=catalog, lookalike_beta=BETA)
    reader = Gallery(tmp_path, "model-a", DIM, catalog=catalog, lookalike_beta=BETA)
    try:
        enrol(writer, "gala", [around(0, 1)])
        enrol(writer, "oat-milk", [around(3, 2)])
        reader.catch_up()
        enrol(writer, "pink-lady", [around(0, 3, 0.1)])
        reader.search(around(0, 4)[None], 1)  # a request catches up first
        assert reader.lookalike("gala") == pytest.approx(writer.lookalike("gala"), abs=1e-6)
        assert reader.lookalike("gala") > 0.8
    finally:
        writer.close(snapshot=False)
        reader.close(snapshot=False)


def test_recognize_decides_on_the_adjusted_score(tmp_path, catalog):
    plain = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(plain, "gala", [around(0, s) for s in range(3)])
    enrol(plain, "pink-lady", [around(0, s, 0.6) for s in range(10, 13)])
    enrol(plain, "oat-milk", [around(3, s) for s in range(20, 22)])
    query = around(0, 99, 0.2)[None]
    before = plain.recognize(query, threshold=0.8)[0]
    plain.close(snapshot=False)
    adjusted = Gallery(tmp_path, "model-a", DIM, catalog=catalog, lookalike_beta=0.5)
    try:
        after = adjusted.recognize(query, threshold=0.8)[0]
        look = adjusted.lookalike(after.matches[0].sku)
    finally:
        adjusted.close(snapshot=False)
    assert before.score == before.similarity and before.known
    assert after.similarity == pytest.approx(before.similarity)
    assert after.score == pytest.approx(before.similarity - 0.5 * look)
    assert not after.known and after.sku is None  # the look-alike pulled it under the threshold
    assert [m.score for m in after.matches] == [m.score for m in before.matches]  # matches stay similarities


def test_beta_0_keeps_no_lookalikes_and_a_model_with_a_beta_finds_them_all(tmp_path, catalog):
    """At beta 0 the centroids are not kept (the decision ignores them); a gallery opened on the same
    catalogue with a beta (another model's calibration, a restart) computes every SKU's from its index."""
    enrolled = {
        "gala": [around(0, s) for s in range(3)],
        "pink-lady": [around(0, s, 0.6) for s in range(10, 13)],
        "oat-milk": [around(3, s) for s in range(20, 22)],
    }
    plain = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    try:
        for sku, vectors in enrolled.items():
            enrol(plain, sku, vectors)
        answer = plain.recognize(around(0, 99, 0.2)[None], threshold=0.8)[0]
        assert len(plain.follower.lookalikes) == 0 and plain.lookalike("gala") == 0.0
        assert answer.score == answer.similarity and answer.known
    finally:
        plain.close()  # snapshot written: the next gallery loads it
    for snapshot in (True, False):  # from the snapshot, and rebuilt from the catalogue
        if not snapshot:
            for path in (tmp_path / "index").iterdir():
                path.unlink()
        adjusted = Gallery(tmp_path, "model-a", DIM, catalog=catalog, lookalike_beta=BETA)
        try:
            for sku, value in expected(enrolled).items():
                assert adjusted.lookalike(sku) == pytest.approx(value, abs=1e-5), (snapshot, sku)
        finally:
            adjusted.close(snapshot=False)


@pytest.mark.parametrize("beta", [-0.1, float("nan"), "0.2"])
def test_a_bad_beta_is_refused_with_its_value(tmp_path, beta):
    with pytest.raises(ValueError, match="lookalike_beta must be a number from 0 to 10, got"):
        Gallery(tmp_path, "model-a", DIM, lookalike_beta=beta)


def test_a_stored_threshold_belongs_to_the_score_it_was_set_on(tmp_path, caplog):
    plain = Gallery(tmp_path, "model-a", DIM)
    plain.set_threshold(0.97)  # on the plain similarity
    plain.close(snapshot=False)
    with caplog.at_level("WARNING", logger="gallery.catalogue_memory"):
        adjusted = Gallery(tmp_path, "model-a", DIM, lookalike_beta=0.2)
    try:
        assert adjusted.stored_threshold is None  # the model's own threshold applies
        assert "calibrated on another decision score (the plain similarity)" in caplog.text and "0.97" in caplog.text
        adjusted.set_threshold(0.8)
        assert adjusted.stored_threshold == 0.8
        assert adjusted.recognize(around(0, 1)[None], model_threshold=0.1)[0].threshold == 0.8
    finally:
        adjusted.close(snapshot=False)
    again = Gallery(tmp_path, "model-a", DIM)
    try:
        assert again.stored_threshold == 0.97  # each score keeps its own
    finally:
        again.close(snapshot=False)


def test_a_threshold_stored_on_the_lookalike_score_is_not_used_by_a_runner_up_calibration(tmp_path, catalog, caplog):
    """The same model file recalibrated on another score (its card's beta replaced by a gamma): the threshold
    a merchandiser stored on the old score is named in a warning and left alone, not applied to the new one."""
    old = Gallery(tmp_path, "model-a", DIM, catalog=catalog, lookalike_beta=0.19)
    old.set_threshold(0.83)
    old.close(snapshot=False)
    with caplog.at_level("WARNING", logger="gallery.catalogue_memory"):
        new = Gallery(tmp_path, "model-a", DIM, catalog=catalog, runner_up_gamma=0.39)
    try:
        assert new.stored_threshold is None
        assert "another decision score (lookalike-0.19)" in caplog.text and "decides on runner-up-0.39" in caplog.text
        assert "0.83" in caplog.text
    finally:
        new.close(snapshot=False)
    caplog.clear()
    with caplog.at_level("WARNING", logger="gallery.catalogue_memory"):
        back = Gallery(tmp_path, "model-a", DIM, catalog=catalog, lookalike_beta=0.19)
    try:
        assert back.stored_threshold == 0.83 and "another decision score" not in caplog.text
    finally:
        back.close(snapshot=False)


def test_recognize_decides_on_the_runner_up_even_when_asked_for_one_match(tmp_path, catalog):
    """A gamma searches for two SKUs whatever ``k``; the answer lists ``k``; the stored threshold of the
    plain similarity is not the one of this score."""
    plain = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(plain, "gala", [around(0, s) for s in range(3)])
    enrol(plain, "pink-lady", [around(0, s, 0.6) for s in range(10, 13)])
    enrol(plain, "oat-milk", [around(3, s) for s in range(20, 22)])
    plain.set_threshold(0.1)
    query = around(0, 99, 0.2)[None]
    both = plain.recognize(query, threshold=0.8, k=2)[0]
    plain.close(snapshot=False)
    scored = Gallery(tmp_path, "model-a", DIM, catalog=catalog, runner_up_gamma=0.5)
    try:
        answer = scored.recognize(query, threshold=0.5, k=1)[0]
        assert scored.stored_threshold is None  # stored for another score
        assert len(scored.follower.lookalikes) == 0  # beta 0: no centroids kept
    finally:
        scored.close(snapshot=False)
    assert len(answer.matches) == 1 and answer.matches[0] == both.matches[0]
    assert answer.similarity == pytest.approx(both.similarity)
    assert answer.score == pytest.approx(both.similarity - 0.5 * both.matches[1].score)
    assert answer.known == (answer.score >= 0.5)


def test_a_bad_gamma_is_refused_with_its_value(tmp_path):
    with pytest.raises(ValueError, match="runner_up_gamma must be a number from 0 to 10, got -1"):
        Gallery(tmp_path, "model-a", DIM, runner_up_gamma=-1)
