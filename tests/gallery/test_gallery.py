"""The gallery against real SQLite files, real FAISS and real image bytes, with synthetic vectors."""

import json
import time

import numpy as np
import pytest

from gallery.gallery import Gallery, ImageUpload
from gallery.reindex import reindex
from gallery.types import ImageNotFound, InvalidSku, ModelMismatch, SkuNotFound
from tests.conftest import make_jpeg

DIM = 16


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def upload(seed: int) -> ImageUpload:
    return ImageUpload(make_jpeg(seed, size=(40, 30)), "image/jpeg", 40, 30)


def enrol(g: Gallery, sku: str, *seeds: int, name=None):
    return g.enrol(sku, [upload(s) for s in seeds], np.stack([vec(s) for s in seeds]), name=name)


def settled(*galleries: Gallery, timeout: float = 10.0) -> None:
    """Wait until each gallery has heard of the newest change (at once with SQLite; a shared catalogue's
    replicas hear of another's write by NOTIFY, within milliseconds)."""
    newest = max(g.store.last_seq() for g in galleries)
    deadline = time.monotonic() + timeout
    while any(g.store.known_seq() < newest for g in galleries):
        assert time.monotonic() < deadline, "a replica never heard of the newest change"
        time.sleep(0.005)


@pytest.fixture
def gallery(tmp_path, catalog):
    g = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    yield g
    g.close(snapshot=False)


def test_enrolled_images_are_searchable_immediately(gallery):
    ids = enrol(gallery, "milk", 1, 2, name="Milk 1L")
    enrol(gallery, "juice", 3)
    assert len(ids) == 2 and gallery.size == 3
    result = gallery.recognize(vec(2)[None], threshold=0.9)[0]
    assert result.known and result.sku == "milk" and result.matches[0].name == "Milk 1L"
    assert [m.sku for m in result.matches] == ["milk", "juice"]  # one match per SKU


def test_unknown_below_threshold(gallery):
    enrol(gallery, "milk", 1)
    result = gallery.recognize(vec(99)[None], threshold=0.9)[0]
    assert not result.known and result.sku is None


def test_delete_image_keeps_sku_and_removes_file(gallery):
    ids = enrol(gallery, "milk", 1, 2)
    digest = gallery.store.get_image("milk", ids[0]).sha256
    gallery.delete_image("milk", ids[0])
    assert gallery.get_sku("milk").image_ids == (ids[1],)
    assert not gallery.blobs.exists(digest)
    assert gallery.recognize(vec(1)[None], 0.0)[0].matches[0].score < 0.99
    with pytest.raises(ImageNotFound):
        gallery.delete_image("milk", ids[0])


def test_shared_file_kept_until_last_reference_goes(gallery):
    ids_a = enrol(gallery, "a", 1)
    enrol(gallery, "b", 1)  # the same photo under two SKUs
    gallery.delete_sku("a")
    assert gallery.blobs.exists(gallery.store.get_image("b", ids_a[0] + 1).sha256)


def test_delete_sku(gallery):
    enrol(gallery, "milk", 1)
    gallery.delete_sku("milk")
    assert gallery.size == 0
    with pytest.raises(SkuNotFound):
        gallery.get_sku("milk")
    assert not gallery.recognize(vec(1)[None], 0.5)[0].known


def test_metadata_and_paging(gallery):
    assert gallery.put_sku("b-1", "Bananas", 150, {"organic": True}) is True
    assert gallery.put_sku("b-1", "Bananas (loose)", 120, {}) is False
    for i in range(5):
        gallery.put_sku(f"s{i}", f"S{i}")
    page = gallery.list_skus(offset=2, limit=2)
    assert page.total == 6 and [s.sku for s, _ in page.items] == ["s1", "s2"]
    sku = gallery.get_sku("b-1")
    assert (sku.name, sku.price_minor, sku.attributes) == ("Bananas (loose)", 120, {})


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "a\x00b", "x" * 65, "-lead", "sp ace"])
def test_invalid_sku_ids_refused_and_nothing_stored(gallery, bad):
    with pytest.raises(InvalidSku):
        enrol(gallery, bad, 1)
    assert gallery.counts() == (0, 0)


def test_everything_survives_a_restart(tmp_path, catalog):
    g = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(g, "milk", 1, 2)
    enrol(g, "juice", 3)
    g.delete_image("milk", 1)
    g.close()
    again = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    assert again.size == 2 and again.get_sku("milk").image_ids == (2,)
    assert again.recognize(vec(3)[None], 0.9)[0].sku == "juice"
    again.close(snapshot=False)


def test_stale_snapshot_catches_up_from_the_change_log(tmp_path, catalog):
    g = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(g, "milk", 1)
    g.save_snapshot()
    enrol(g, "juice", 2)  # after the snapshot, as if the process were killed here
    g.delete_sku("milk")
    g.store.close()
    again = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    assert again.size == 1 and again.recognize(vec(2)[None], 0.9)[0].sku == "juice"
    again.close(snapshot=False)


def test_corrupt_snapshot_is_rebuilt_from_sqlite(tmp_path, catalog):
    g = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(g, "milk", 1, 2)
    path = g.save_snapshot()
    g.store.close()
    path.write_bytes(b"garbage")
    again = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    assert again.size == 2
    again.close(snapshot=False)


def test_two_processes_see_each_others_writes(tmp_path, catalog):
    """Two Gallery objects on one data dir stand for two uvicorn workers."""
    a, b = Gallery(tmp_path, "model-a", DIM, catalog=catalog), Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(a, "milk", 1)
    settled(a, b)
    assert b.recognize(vec(1)[None], 0.9)[0].sku == "milk"
    b.delete_sku("milk")
    settled(a, b)
    assert not a.recognize(vec(1)[None], 0.9)[0].known
    a.close(snapshot=False)
    b.close(snapshot=False)


def test_another_model_is_refused_until_reindexed(tmp_path, catalog, tiny_embedder):
    g = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    enrol(g, "milk", 1)
    g.close()
    other = Gallery(tmp_path, tiny_embedder.version, tiny_embedder.embedding_dim, catalog=catalog)
    with pytest.raises(ModelMismatch, match="reindex"):
        other.recognize(np.zeros((1, 256), np.float32) + 1 / 16, 0.5)
    with pytest.raises(ModelMismatch):
        other.enrol("juice", [upload(5)], np.ones((1, 256), np.float32) / 16)
    other.close(snapshot=False)
    report = reindex(tmp_path, tiny_embedder, catalog=catalog)
    assert report.embedded == 1 and not report.failed
    ready = Gallery(tmp_path, tiny_embedder.version, tiny_embedder.embedding_dim, catalog=catalog)
    assert ready.size == 1
    ready.check_model()
    info = json.loads((tmp_path / "index" / f"{tiny_embedder.version}.flat.json").read_text())
    assert info["vectors"] == 1
    ready.close(snapshot=False)
    # the old model's vectors are still there: the old server could keep serving
    old = Gallery(tmp_path, "model-a", DIM, catalog=catalog)
    assert old.size == 1
    old.close(snapshot=False)


def test_reindex_resumes_and_reports_unreadable_files(tmp_path, tiny_embedder):
    g = Gallery(tmp_path, "model-a", DIM)
    ids = enrol(g, "milk", 1, 2)
    broken = g.blobs.path_for(g.store.get_image("milk", ids[1]).sha256)
    g.close()
    broken.write_bytes(b"not an image anymore")
    report = reindex(tmp_path, tiny_embedder)
    assert report.embedded == 1 and list(report.failed) == [ids[1]]
    assert not (tmp_path / "index" / f"{tiny_embedder.version}.flat").exists()  # not switched
    broken.write_bytes(make_jpeg(2, size=(40, 30)))
    again = reindex(tmp_path, tiny_embedder)
    assert again.embedded == 1 and not again.failed  # only the missing one


def test_hnsw_gallery(tmp_path, catalog):
    g = Gallery(tmp_path, "model-a", DIM, index_kind="hnsw", catalog=catalog)
    enrol(g, "milk", 1)
    enrol(g, "juice", 2)
    g.delete_sku("milk")
    assert g.recognize(vec(2)[None], 0.9)[0].sku == "juice"
    g.close()
    again = Gallery(tmp_path, "model-a", DIM, index_kind="hnsw", catalog=catalog)
    assert again.size == 1
    again.close(snapshot=False)


def test_initial_fetch_covers_k_skus_of_mean_size():
    from gallery.gallery import MAX_INITIAL_FETCH, initial_fetch

    assert initial_fetch(k=5, images=60, skus=60) == 20  # one image per SKU: 4k
    assert initial_fetch(k=1, images=0, skus=0) == 16
    assert initial_fetch(k=5, images=3000, skus=100) == 20 * 30
    assert initial_fetch(k=5, images=10**6, skus=10) == MAX_INITIAL_FETCH
    assert initial_fetch(k=5, images=31, skus=2) == 20 * 16  # rounded up


def test_search_runs_a_flat_index_once_when_skus_have_many_images(gallery, monkeypatch):
    rng = np.random.default_rng(0)
    for s in range(8):  # 30 tightly clustered images per SKU: the nearest 20 images are all one SKU's
        centre = vec(s)
        vectors = centre + 0.05 * rng.normal(size=(30, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        gallery.enrol(f"sku-{s}", [upload(100 * s + i) for i in range(30)], vectors)
    calls = []
    real = gallery._index.search
    monkeypatch.setattr(gallery._index, "search", lambda q, k: calls.append(k) or real(q, k))
    matches = gallery.search(vec(5)[None], k=5)[0]
    assert matches[0].sku == "sku-5"
    assert len(matches) == 5 and len({m.sku for m in matches}) == 5
    assert len(calls) == 1, f"index searched {len(calls)} times (fetch sizes {calls})"


def test_search_sets_faiss_threads_in_the_searching_thread(tmp_path):
    import threading

    import faiss

    g = Gallery(tmp_path, "model-a", DIM, search_threads=1)
    enrol(g, "milk", 1)
    seen = []

    def worker():
        faiss.omp_set_num_threads(3)  # per thread with GNU OpenMP: a start-up setting elsewhere never reaches here
        g.search(vec(1)[None], k=1)
        seen.append(faiss.omp_get_max_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join(30)
    g.close(snapshot=False)
    assert seen == [1]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_searches_beside_enrolments_and_deletes_from_other_threads(tmp_path, catalog, kind):
    import threading

    g = Gallery(tmp_path, "model-a", DIM, index_kind=kind, catalog=catalog)
    enrol(g, "anchor", 1)
    errors, done = [], threading.Event()

    def searcher():
        try:
            while not done.is_set():
                for matches in g.search(np.stack([vec(1), vec(2)]), k=3):
                    assert matches and matches[0].sku in {"anchor"} | {f"s{i}" for i in range(40)}
                    assert len({m.sku for m in matches}) == len(matches)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(40):
            ids = enrol(g, f"s{i}", 1000 + 2 * i, 1001 + 2 * i)
            if i % 3 == 0:
                g.delete_image(f"s{i}", ids[0])
            if i % 5 == 0:
                g.delete_sku(f"s{i}")
    finally:
        done.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:3]
    assert g.recognize(vec(1)[None], threshold=0.99)[0].sku == "anchor"
    assert g.size == 1 + sum(2 - (i % 3 == 0) for i in range(40) if i % 5)
    g.close(snapshot=False)


def test_hnsw_search_starts_with_a_small_fetch(tmp_path, monkeypatch):
    g = Gallery(tmp_path, "model-a", DIM, index_kind="hnsw")
    for s in range(4):
        enrol(g, f"sku-{s}", *range(100 * s, 100 * s + 30))
    calls = []
    real = g._index.search
    monkeypatch.setattr(g._index, "search", lambda q, k: calls.append(k) or real(q, k))
    g.search(vec(5)[None], k=5)
    assert calls[0] == 20  # its cost grows with the fetch (efSearch): 4k, not 4k SKUs' worth of images
    g.close(snapshot=False)
