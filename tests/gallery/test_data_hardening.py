"""Data hardening: many ids in one lookup, one durable atomic write, old single-vector rows."""

import os
import sqlite3

import numpy as np

from gallery.gallery import Gallery
from gallery.stores.base import NewImage
from gallery.stores.sqlite.store import CatalogStore

DIM = 8


def test_vectors_for_300000_ids_is_chunked(tmp_path):
    """A worker catching up after a bulk enrol asks for every pending id at once."""
    store = CatalogStore(tmp_path / "c.sqlite3")
    vectors = np.eye(DIM, dtype=np.float32)[:5]
    ids = store.add_images("a", [NewImage(f"{i:064x}", "image/jpeg", 1, 1) for i in range(5)], vectors, "m")
    wanted = list(range(1, 300_001))
    got_ids, skus, got = store.vectors_for("m", wanted, dim=DIM)
    assert got_ids.tolist() == ids and skus == ["a"] * 5 and np.array_equal(got, vectors)
    assert len(store.sku_names([f"s{i}" for i in range(300_000)] + ["a"])) == 1
    store.close()


def test_one_atomic_write_helper_with_a_durable_rename(tmp_path, monkeypatch):
    """File fsynced, renamed, then its folder fsynced: for image files, index snapshots and model cards."""
    from embedder import artifact
    from gallery.search import make_index

    synced = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else None)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    artifact.write_atomically(tmp_path / "x.bin", b"hello")
    assert (tmp_path / "x.bin").read_bytes() == b"hello" and synced == [False, True]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    written = []
    real = artifact.write_atomically
    monkeypatch.setattr(
        artifact, "write_atomically", lambda path, data: (written.append(os.path.basename(path)), real(path, data))
    )
    artifact.write_artifact(tmp_path / "model", b"not really a model", backbone="b", embedding_dim=DIM, input_size=32)
    assert written == ["model.tflite", "model.json"]  # the model card too, not just the model

    import gallery.search.base as base
    import gallery.search.flat as flat
    import gallery.search.hnsw as hnsw

    assert base.write_atomically is flat.write_atomically is hnsw.write_atomically is real
    index = make_index("flat", DIM)
    index.add(np.array([1]), np.eye(DIM, dtype=np.float32)[:1])
    synced.clear()
    index.save(tmp_path / "index.flat")
    assert synced == [False, True]


def test_old_single_vector_rows_still_load(tmp_path):
    """A catalogue written before reference images had views: one vector per BLOB."""
    g = Gallery(tmp_path, "m", DIM)
    g.close(snapshot=False)
    conn = sqlite3.connect(tmp_path / "catalog.sqlite3")
    conn.execute(
        "INSERT INTO skus(sku, name, price_minor, attributes, created_at, updated_at) VALUES ('a', 'A', NULL, '{}', 0, 0)"
    )
    for i in range(3):
        conn.execute(
            "INSERT INTO images(sku, sha256, media_type, width, height, created_at) VALUES ('a', ?, 'image/jpeg', 1, 1, 0)",
            (f"{i:064x}",),
        )
        conn.execute(
            "INSERT INTO vectors(image_id, model_version, vector) VALUES (?, 'm', ?)",
            (i + 1, np.eye(DIM, dtype=np.float32)[i].tobytes()),
        )
    conn.commit()
    conn.close()
    again = Gallery(tmp_path, "m", DIM)
    assert again.index_size() == (3, 3)
    assert again.recognize(np.eye(DIM, dtype=np.float32)[1:2], 0.9)[0].sku == "a"
    again.close(snapshot=True)
    reopened = Gallery(tmp_path, "m", DIM)  # from the snapshot this time
    assert reopened.index_size() == (3, 3)
    reopened.close(snapshot=False)


def test_views_are_rows_of_one_image_and_images_are_what_is_counted(tmp_path):
    """Aggregation per SKU and the first fetch's sizing count reference images, not their rows."""
    from gallery.gallery import ImageUpload
    from tests.conftest import make_jpeg

    g = Gallery(tmp_path, "m", DIM)
    rows = np.random.default_rng(0).normal(size=(9, DIM)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    other = np.eye(DIM, dtype=np.float32)[:1]
    ids = g.enrol("carton", [ImageUpload(make_jpeg(1), "image/jpeg", 160, 120)], [rows])
    g.enrol("milk", [ImageUpload(make_jpeg(2), "image/jpeg", 160, 120)], other)
    assert len(ids) == 1 and g.index_size() == (10, 2) and g.counts() == (2, 2)
    assert dict(g.follower.images_per_sku) == {"carton": 1, "milk": 1}
    matches = g.search(rows[4:5], k=5)[0]
    assert [m.sku for m in matches] == ["carton", "milk"]  # one match per SKU, views included
    g.delete_image("carton", ids[0])
    assert g.index_size() == (1, 1)
    g.close(snapshot=False)
