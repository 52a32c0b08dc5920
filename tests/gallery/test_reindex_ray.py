"""Re-index on Ray (``gallery.reindex_ray``): a real local Ray (2 CPUs, one session for the module),
real JPEGs and the tiny LiteRT model; the vectors must be those of the local re-index."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from embedder.artifact import load_artifact
from gallery.gallery import Gallery, ImageUpload
from gallery.reindex import reindex
from gallery.stores.open import open_catalog
from service.cli import main
from tests.conftest import make_jpeg

try:
    import ray
except ImportError as exc:  # the ray extra (pip install 'skulens[ray]'; part of dev)
    pytest.skip(f"ray cannot be imported ({exc}): install the ray extra", allow_module_level=True)

from gallery.reindex_ray import reindex_on_ray

DIM = 16
VIEWS = 2  # catalogue views per studio photo: the same for both re-indexes


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def studio_jpeg(seed: int) -> bytes:
    """A packshot on white (square, white border): stored with its catalogue views."""
    pixels = np.full((120, 120, 3), 255, np.uint8)
    pixels[30:90, 40:80] = np.random.default_rng(seed).integers(0, 200, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def enrolled(data_dir, catalog=None) -> list[int]:
    """A gallery of model "model-a" (random vectors): 6 photos and 2 studio packshots over 3 SKUs."""
    g = Gallery(data_dir, "model-a", DIM, catalog=catalog)
    rng = np.random.default_rng(0)
    photos = [(make_jpeg(seed, size=(160, 120)), 160, 120) for seed in range(6)]
    photos += [(studio_jpeg(seed), 120, 120) for seed in (1, 2)]
    ids = []
    for n, (data, width, height) in enumerate(photos):
        vector = rng.normal(size=(1, DIM)).astype(np.float32)
        upload = ImageUpload(data, "image/jpeg", width, height)
        ids += g.enrol(f"sku-{n % 3}", [upload], vector / np.linalg.norm(vector))
    g.close()
    return ids


def vectors_by_image(data_dir, catalog, version) -> dict[int, np.ndarray]:
    store = open_catalog(data_dir, catalog)
    ids, _, vectors = store.vectors_for(version, dim=256)
    store.close()
    return {int(i): vectors[ids == i] for i in np.unique(ids)}


def test_ray_gives_the_vectors_of_the_local_reindex(tmp_path, catalog, tiny_model_dir, tiny_embedder):
    ids = enrolled(tmp_path, catalog)
    local = reindex(tmp_path, tiny_embedder, batch_size=3, catalogue_views=VIEWS, catalog=catalog)
    assert local.embedded == len(ids) and not local.failed
    expected = vectors_by_image(tmp_path, catalog, tiny_embedder.version)
    store = open_catalog(tmp_path, catalog)
    store.prune_vectors("model-a")  # the new model's vectors gone again: Ray embeds every image
    store.close()

    report = reindex_on_ray(
        tmp_path, load_artifact(tiny_model_dir), workers=2, batch_size=3, catalogue_views=VIEWS, catalog=catalog
    )
    assert report.embedded == len(ids) and not report.failed
    assert sum(n for n, _ in report.workers.values()) == len(ids)  # per worker: images, busy seconds
    got = vectors_by_image(tmp_path, catalog, tiny_embedder.version)
    assert sorted(got) == sorted(expected) == sorted(ids)
    assert max(len(v) for v in got.values()) == 1 + VIEWS  # the studio photos' views came too
    for image_id, vectors in expected.items():
        assert got[image_id].shape == vectors.shape
        assert np.allclose(got[image_id], vectors, atol=1e-5), f"image {image_id}"
    ready = Gallery(tmp_path, tiny_embedder.version, 256, catalog=catalog)  # switched: the model's index
    assert ready.index_size() == (len(ids) + 2 * VIEWS, len(ids))  # rows (photos and views), images
    ready.check_model()
    ready.close(snapshot=False)


def test_a_bad_photo_is_reported_the_index_not_switched_and_a_rerun_embeds_only_what_is_missing(
    tmp_path, tiny_model_dir, capsys, monkeypatch
):
    ids = enrolled(tmp_path)
    g = Gallery(tmp_path, "model-a", DIM)
    broken = g.blobs.path_for(g.store.get_image("sku-1", ids[1]).sha256)
    good_bytes = broken.read_bytes()
    g.close()
    broken.write_bytes(b"not an image anymore")
    artifact = load_artifact(tiny_model_dir)

    monkeypatch.setenv("SKULENS_CATALOGUE_VIEWS", str(VIEWS))
    command = ["reindex", "--ray", "--data-dir", str(tmp_path), "--model", str(tiny_model_dir), "--batch-size", "4"]
    assert main(command) == 1  # on the Ray this process joined
    out = capsys.readouterr().out
    assert f"re-embedded {len(ids) - 1} images" in out and "Ray workers" in out
    assert "1 images could not be re-embedded; the index was NOT switched" in out and f"image {ids[1]}:" in out
    assert not (tmp_path / "index" / f"{artifact.version}.flat").exists()  # not switched
    store = open_catalog(tmp_path)
    assert store.get_meta("model_version") == "model-a"
    store.close()

    broken.write_bytes(good_bytes)
    again = reindex_on_ray(tmp_path, artifact, batch_size=4, catalogue_views=VIEWS)
    assert again.embedded == 1 and not again.failed  # only the missing one
    assert (tmp_path / "index" / f"{artifact.version}.flat").exists()
    assert set(vectors_by_image(tmp_path, None, artifact.version)) == set(ids)


def test_an_actor_that_cannot_reach_the_photos_stops_the_job_with_one_clear_error(
    tmp_path, tiny_model_dir, monkeypatch
):
    """As on a cluster node without the SQLite data directory: the driver reaches the catalogue (here it
    is redirected to it), the workers find nothing at the path they are given."""
    import gallery.reindex_ray as on_ray
    from gallery.reindex_ray import RayUnavailable

    ids = enrolled(tmp_path / "data")
    elsewhere = tmp_path / "not-on-this-node"
    monkeypatch.setattr(on_ray, "open_catalog", lambda _root, catalog: open_catalog(tmp_path / "data", catalog))
    with pytest.raises(RayUnavailable, match="the Ray job failed.*no catalogue at .*not-on-this-node on Ray node"):
        reindex_on_ray(elsewhere, load_artifact(tiny_model_dir), workers=1, batch_size=4, catalogue_views=VIEWS)
    assert not (elsewhere / "catalog.sqlite3").exists()  # a worker never creates a catalogue of its own
    store = open_catalog(tmp_path / "data")
    assert store.get_meta("model_version") == "model-a" and len(store.images_missing_vectors("x")) == len(ids)
    store.close()
