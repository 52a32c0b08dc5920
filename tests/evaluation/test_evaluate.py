"""``skulens evaluate`` / ``skulens calibrate`` end to end on real JPEGs, and their building blocks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evaluation.data import (
    HELD_OUT_SKUS,
    EmbeddingCache,
    ImageSet,
    embed_files,
    scan_folder,
)
from evaluation.evaluate import REJECTION_POINTS, _rejecting, evaluate_model, to_jsonable
from tests.conftest import make_jpeg


def write_folders(root: Path) -> tuple[Path, Path]:
    """Gallery: SKUs a, b, c with 3 photos each. Queries: a, b, c re-encoded, and u (never enrolled)."""
    gallery, queries = root / "gallery", root / "queries"
    for i, sku in enumerate("abc"):
        (gallery / sku).mkdir(parents=True)
        (queries / sku).mkdir(parents=True)
        for j in range(3):
            (gallery / sku / f"{j}.jpg").write_bytes(make_jpeg(100 * i + j))
        for j in range(2):  # the same scenes as gallery photos 0 and 1, compressed differently
            (queries / sku / f"q{j}.jpg").write_bytes(make_jpeg(100 * i + j, quality=60))
    (queries / "u").mkdir()
    for j in range(2):
        (queries / "u" / f"q{j}.jpg").write_bytes(make_jpeg(900 + j))
    (gallery / "a" / "notes.txt").write_text("not an image")
    return gallery, queries


def test_scan_folder_and_few_shot_sampling(tmp_path):
    gallery, _ = write_folders(tmp_path)
    images = scan_folder(gallery)
    assert len(images) == 9 and images.skus[:3] == ("a", "a", "a")
    few = images.per_sku(2, seed=0)
    assert len(few) == 6 and sorted(set(few.skus)) == ["a", "b", "c"]
    assert few == images.per_sku(2, seed=0) and images.per_sku(99) == images
    assert images.without({"a"}).skus == ("b",) * 3 + ("c",) * 3
    with pytest.raises(FileNotFoundError, match="nowhere"):
        scan_folder(tmp_path / "nowhere")
    (tmp_path / "empty" / "x").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images in"):
        scan_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="got 0"):
        images.per_sku(0)


def test_held_out_skus_are_trainings_list():
    names = HELD_OUT_SKUS
    assert len(names) == 10 and "Pink-Lady" in names
    from training.config import TrainConfig

    assert TrainConfig().held_out == names  # one list: training's default is evaluation's


def test_to_jsonable_turns_nan_into_null():
    assert to_jsonable({"a": [float("nan"), np.float32(0.5), np.int64(3)], 1: (True,)}) == {
        "a": [None, 0.5, 3],
        "1": [True],
    }


def test_embed_files_uses_the_cache(tmp_path, tiny_embedder):
    gallery, _ = write_folders(tmp_path)
    images = scan_folder(gallery)
    cache = EmbeddingCache(tmp_path / "cache", tiny_embedder.version)
    first = embed_files(tiny_embedder, images.paths, cache=cache, batch_size=4)
    assert first.shape == (9, 256) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-3)
    assert (tmp_path / "cache" / tiny_embedder.version).is_dir()

    class Refuses:
        embedding_dim, input_size, version = 256, 96, tiny_embedder.version

        def embed(self, pixels):
            raise AssertionError("everything should come from the cache")

    again = embed_files(Refuses(), images.paths, cache=EmbeddingCache(tmp_path / "cache", tiny_embedder.version))
    np.testing.assert_array_equal(first, again)
    dark = embed_files(tiny_embedder, images.paths[:2], cache=cache, condition="dark")
    assert not np.allclose(dark, first[:2])


def test_evaluate_model_on_real_jpegs(tmp_path, tiny_embedder):
    gallery, queries = write_folders(tmp_path)
    result = evaluate_model(
        tiny_embedder,
        "tiny",
        scan_folder(gallery),
        scan_folder(queries),
        unknown_skus={"c"},
        groups={"seen": {"a", "b"}, "held-out": {"c"}},
        conditions=("dark", "partial"),
        batch_size=4,
    )
    closed = result.closed
    assert (closed.gallery_images, closed.gallery_skus, closed.queries) == (9, 3, 6)  # u is not enrolled
    assert closed.top1 >= 0.5 and closed.top5 == 1.0  # 3 SKUs only: always in the top 5
    assert set(closed.recall_at_k) == {1, 2, 4, 8} and 0 < closed.map_at_r <= 1
    assert [g.name for g in closed.groups] == ["seen", "held-out"] and closed.groups[1].queries == 2
    assert [s.sku for s in closed.per_sku] == ["a", "b", "c"]
    opened = result.open
    assert opened.unknown_skus == ["c", "u"] and opened.gallery_skus == 2
    assert opened.at_threshold.known == 4 and opened.at_threshold.unknown == 4
    assert 0 <= opened.auroc <= 1 and opened.calibration is not None
    assert [p.unknown_rejection >= r for p, r in zip(opened.operating_points, REJECTION_POINTS)] == [True] * 4
    assert len(opened.unknown_examples) == 4 and not any(q.correct for q in opened.unknown_examples)
    assert [r.condition for r in result.robustness] == ["clean", "dark", "partial"]
    assert result.robustness[0].top1 == closed.top1
    assert len(result.queries) == 6 and all(len(q.top_skus) == 3 for q in result.queries)
    assert result.model["version"] == tiny_embedder.version


def test_open_set_scores_are_the_served_lookalike_adjusted_ones(tmp_path, tiny_embedder):
    from gallery.lookalike import label_lookalikes

    gallery_dir, queries_dir = write_folders(tmp_path)
    gallery, queries = scan_folder(gallery_dir), scan_folder(queries_dir)
    kwargs = {"unknown_skus": {"c"}, "batch_size": 4, "threshold": 0.0}
    plain = evaluate_model(tiny_embedder, "tiny", gallery, queries, **kwargs).open
    adjusted = evaluate_model(tiny_embedder, "tiny", gallery, queries, lookalike_beta=0.5, **kwargs).open
    g = embed_files(tiny_embedder, gallery.paths)
    q = embed_files(tiny_embedder, queries.paths)
    enrolled = np.array([s != "c" for s in gallery.skus])
    labels = np.array([0 if s == "a" else 1 for s in np.array(gallery.skus)[enrolled]])
    look = label_lookalikes(g[enrolled], labels, 2)
    sims = q @ g[enrolled].T
    best_label = labels[sims.argmax(axis=1)]
    expected = sims.max(axis=1) - 0.5 * look[best_label]
    known = np.array([s in ("a", "b") for s in queries.skus])
    assert adjusted.known_scores == pytest.approx(expected[known].tolist(), abs=1e-5)
    assert adjusted.unknown_scores == pytest.approx(expected[~known].tolist(), abs=1e-5)
    assert plain.known_scores == pytest.approx(sims.max(axis=1)[known].tolist(), abs=1e-5)
    assert look[0] == look[1] > 0  # two SKUs: each is the other's lookalike


def test_evaluate_and_calibrate_commands(tmp_path, tiny_model_dir, capsys):
    from service.cli import main

    gallery, queries = write_folders(tmp_path)
    out, report, cache = tmp_path / "eval.json", tmp_path / "report.html", tmp_path / "cache"
    argv = [
        "evaluate",
        str(gallery),
        str(queries),
        "--model",
        f"tiny={tiny_model_dir}",
        "--unknown-skus",
        "c",
        "--held-out-skus",
        "c",
        "--gallery-per-sku",
        "2",
        "--robustness",
        "--json-out",
        str(out),
        "--report",
        str(report),
        "--cache-dir",
        str(cache),
        "--batch-size",
        "4",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "### Closed set" in printed and "| top-1 |" in printed and "### Robustness" in printed
    data = json.loads(out.read_text())
    result = data["models"]["tiny"]
    assert data["settings"]["gallery_per_sku"] == 2 and data["settings"]["unknown_skus"] == ["c"]
    assert result["closed"]["gallery_images"] == 6
    assert [r["condition"] for r in result["robustness"]] == ["clean", "dark", "blurry", "low_res", "partial"]
    assert result["open"]["at_threshold"]["unknown"] == 4
    assert report.read_text().count("data:image/jpeg;base64,") >= 6
    assert main(argv) == 0  # second run: from the cache, same numbers
    assert json.loads(out.read_text())["models"]["tiny"]["closed"] == result["closed"]

    # calibrate against the folder, print only
    cal_json = tmp_path / "cal.json"
    assert (
        main(
            [
                "calibrate",
                str(queries),
                "--gallery-folder",
                str(gallery),
                "--model",
                str(tiny_model_dir),
                "--dry-run",
                "--json-out",
                str(cal_json),
                "--cache-dir",
                str(cache),
                "--data-dir",
                str(tmp_path / "none"),
            ]
        )
        == 0
    )
    assert "threshold" in capsys.readouterr().out
    assert math.isfinite(json.loads(cal_json.read_text())["threshold"])


def test_calibrate_stores_the_threshold_with_an_enrolled_gallery(tmp_path, tiny_model_dir, tiny_embedder):
    from gallery.gallery import Gallery, ImageUpload
    from service.cli import main

    gallery_dir, queries = write_folders(tmp_path)
    data_dir = tmp_path / "data"
    store = Gallery(data_dir, tiny_embedder.version, tiny_embedder.embedding_dim)
    images = scan_folder(gallery_dir)
    vectors = embed_files(tiny_embedder, images.paths)
    for sku in ("a", "b"):  # c and u stay unknown
        rows = [i for i, s in enumerate(images.skus) if s == sku]
        uploads = [ImageUpload(images.paths[i].read_bytes(), "image/jpeg", 160, 120) for i in rows]
        store.enrol(sku, uploads, vectors[rows])
    store.close()
    cal_json = tmp_path / "cal.json"
    assert (
        main(
            [
                "calibrate",
                str(queries),
                "--data-dir",
                str(data_dir),
                "--model",
                str(tiny_model_dir),
                "--target-precision",
                "0.9",
                "--json-out",
                str(cal_json),
                "--no-cache",
            ]
        )
        == 0
    )
    calibration = json.loads(cal_json.read_text())
    assert calibration["at_threshold"]["known"] == 4 and calibration["at_threshold"]["unknown"] == 4
    assert calibration["provenance"]["model_version"] == tiny_embedder.version and calibration["curve"]
    reopened = Gallery(data_dir, tiny_embedder.version, tiny_embedder.embedding_dim)
    assert reopened.threshold(default=-5.0) == pytest.approx(calibration["threshold"])
    stored = json.loads(reopened.store.get_meta(f"calibration:{tiny_embedder.version}"))
    assert stored["threshold"] == calibration["threshold"] and stored["curve"] == calibration["curve"]
    reopened.close()
    # refused, nothing stored: no unknown product among the queries, or a target out of reach
    only_known = tmp_path / "only-known"
    (only_known / "a").mkdir(parents=True)
    (only_known / "a" / "q.jpg").write_bytes((queries / "a" / "q0.jpg").read_bytes())
    for extra in ([], ["--gallery-folder", str(gallery_dir)]):  # (the unreachable target: test_calibrate.py)
        with pytest.raises(SystemExit, match="refused, nothing stored: no unknown queries"):
            main(
                [
                    "calibrate",
                    str(only_known),
                    *extra,
                    "--data-dir",
                    str(data_dir),
                    "--model",
                    str(tiny_model_dir),
                    "--no-cache",
                ]
            )
    reopened = Gallery(data_dir, tiny_embedder.version, tiny_embedder.embedding_dim)
    assert reopened.threshold(default=-5.0) == pytest.approx(calibration["threshold"])
    reopened.close()
    with pytest.raises(SystemExit, match="needs --gallery-folder"):
        main(
            [
                "calibrate",
                str(queries),
                "--data-dir",
                str(data_dir),
                "--model",
                str(tiny_model_dir),
                "--unknown-skus",
                "c",
            ]
        )


@pytest.mark.grocery
def test_evaluate_a_few_grocery_skus(grocery, tiny_embedder):
    skus = {"Banana", "Lime", "Red-Beet"}
    gallery = scan_folder(grocery / "train")
    gallery = gallery.subset([s in skus for s in gallery.skus]).per_sku(3, seed=0)
    queries = scan_folder(grocery / "val")
    queries = queries.subset([s in skus for s in queries.skus])
    result = evaluate_model(tiny_embedder, "tiny", gallery, queries, unknown_skus={"Lime"}, batch_size=16)
    assert result.closed.gallery_images == 9 and result.closed.queries == len(queries) > 0
    assert 0 <= result.closed.top1 <= 1 and result.open.unknown_skus == ["Lime"]


def test_image_set_subset_keeps_order():
    images = ImageSet((Path("a/1"), Path("b/1"), Path("a/2")), ("a", "b", "a"))
    assert images.subset([True, False, True]).paths == (Path("a/1"), Path("a/2"))


def test_rejecting_thresholds_are_the_lowest_rejecting_the_fraction_asked():
    scores = np.array([0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    fractions = (0.1, 0.2, 0.25, 0.5, 0.95, 1.0)
    for fraction, threshold in zip(fractions, _rejecting(scores, fractions)):
        assert np.mean(scores < threshold) >= fraction
        highest_rejected = scores[scores < threshold].max()
        assert threshold == np.nextafter(highest_rejected, np.inf)
        assert np.mean(scores < highest_rejected) < fraction  # a lower threshold would reject too few


def test_cli_argument_forms(tmp_path):
    from evaluation.cli import _conditions, _model_spec, _sku_list

    assert _sku_list("a, b,,c") == {"a", "b", "c"} and _sku_list(None) == set()
    assert _sku_list("default") == set(HELD_OUT_SKUS)
    listing = tmp_path / "skus.txt"
    listing.write_text("# held out\nx\n\ny\n")
    assert _sku_list(f"@{listing}") == {"x", "y"}
    assert _model_spec("stage1=runs/a/b") == ("stage1", Path("runs/a/b"))
    assert _model_spec("runs/a/b") == ("b", Path("runs/a/b"))
    assert _conditions("all") == ("dark", "blurry", "low_res", "partial") and _conditions(None) == ()
    with pytest.raises(SystemExit, match="foggy"):
        _conditions("dark,foggy")


def test_evaluate_command_names_a_missing_model(tmp_path):
    from service.cli import main

    gallery, queries = write_folders(tmp_path)
    with pytest.raises(SystemExit, match="nothing-here"):
        main(["evaluate", str(gallery), str(queries), "--model", f"x={tmp_path / 'nothing-here'}", "--no-cache"])
