"""The fold protocol's pure parts: SKU-disjoint folds, per-fold figures, cross-fitted thresholds."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from training.fold_calibration import pooled_calibration
from training.fold_metrics import Vectors, evaluate_fold
from training.fold_summary import cross_fitted_thresholds, summarise
from training.folds import sku_folds


def test_folds_are_disjoint_cover_everything_and_balance_val_skus():
    with_val = [f"v{i}" for i in range(10)]
    without = [f"n{i}" for i in range(5)]
    folds = sku_folds(with_val, without, n_folds=4, seed=0)
    flat = [s for f in folds for s in f]
    assert sorted(flat) == sorted(with_val + without) and len(flat) == len(set(flat))
    counts = [sum(s.startswith("v") for s in f) for f in folds]
    assert max(counts) - min(counts) <= 1
    assert folds == sku_folds(with_val, without, n_folds=4, seed=0)
    assert folds != sku_folds(with_val, without, n_folds=4, seed=1)
    with pytest.raises(ValueError, match="fill"):
        sku_folds(["a"], [], n_folds=2)


def one_hot(labels, n):
    return np.eye(n, dtype=np.float32)[labels]


def toy_vectors(flip_wrong: bool = False) -> Vectors:
    """3 SKUs embedded as axis vectors; query 3 (SKU 2) is embedded like SKU 1: one mistake."""
    gallery_labels = np.array([0, 0, 1, 1, 2, 2])
    query_labels = np.array([0, 1, 2, 2])
    queries = one_hot([0, 1, 2, 1], 3)
    return Vectors(
        skus=("a", "b", "c"),
        gallery=one_hot(gallery_labels, 3),
        gallery_labels=gallery_labels,
        queries=queries,
        shifted=one_hot([0, 1, 1, 1], 3),
        flipped=queries.copy(),
        query_labels=query_labels,
        catalogue=one_hot([0, 1, 2], 3),
        catalogue_labels=np.array([0, 1, 2]),
        views=one_hot([0, 1], 3),
        view_labels=np.array([0, 1]),
    )


def test_evaluate_fold_counts_by_hand():
    row = evaluate_fold(toy_vectors(), ("c",))
    assert row["clean"] == {"all": 0.75, "trained": 1.0, "never_trained": 0.5}
    assert row["shifted"] == {"all": 0.5, "trained": 1.0, "never_trained": 0.0}
    assert row["clean_flip_tta"]["all"] == 0.75
    assert row["catalogue"]["photo_only"]["all"] == 0.75
    opened = row["open_set"]["clean"]
    assert opened["known"] == [True, True, False, False]
    # unknown query 2 scores 0 against a and b, query 3 scores 1 against b: AUROC = (1 + 0.5) / 2 per known
    assert opened["auroc"] == pytest.approx(0.75)
    assert opened["lookalike"] == [0.0, 0.0, 0.0, 0.0]  # a and b enrolled, orthogonal centroids


def test_lookalike_is_the_best_skus_nearest_other_centroid():
    v = toy_vectors()
    gallery = v.gallery.copy()
    gallery[2] = [0.6, 0.8, 0.0]  # b's first photo leans towards a
    v = Vectors(**{**v.__dict__, "gallery": gallery})
    opened = evaluate_fold(v, ("c",))["open_set"]["clean"]
    b = gallery[2] + gallery[3]
    expected = b[0] / np.linalg.norm(b)  # cos(centroid a = e0, centroid b)
    assert opened["lookalike"] == pytest.approx([expected] * 4)


def test_summary_and_cross_fitted_thresholds():
    rows = [evaluate_fold(toy_vectors(), ("c",)), evaluate_fold(toy_vectors(), ("a",))]
    figures = summarise(rows, target=0.5)
    assert figures["top1_clean_all"]["folds"] == [0.75, 0.75]
    fitted = cross_fitted_thresholds(rows, "clean", 0.5)
    assert len(fitted) == 2 and all(0.0 <= f["threshold"] <= 1.0 for f in fitted)
    assert {"auroc_clean_lookalike", "at_p50_clean_lookalike_beta", "at_p50_shifted_lookalike_known_acceptance"} <= set(
        figures
    )
    assert {"auroc_clean_runner_up", "at_p50_clean_runner_up_gamma", "at_p50_shifted_runner_up_precision"} <= set(
        figures
    )
    for cue in ("lookalike", "runner_up"):
        assert all(f["beta"] >= 0 for f in cross_fitted_thresholds(rows, "clean", 0.5, cue=cue))
    with pytest.raises(ValueError, match="'centroid'"):
        cross_fitted_thresholds(rows, "clean", 0.5, cue="centroid")


def test_the_runner_up_of_each_open_set_query_is_its_second_enrolled_sku():
    rng = np.random.default_rng(3)
    unit = lambda rows: rows / np.linalg.norm(rows, axis=1, keepdims=True)  # noqa: E731
    v = replace(toy_vectors(), gallery=unit(rng.normal(size=(6, 3))), queries=unit(rng.normal(size=(4, 3))))
    opened = evaluate_fold(v, ("c",))["open_set"]["clean"]
    for q, runner_up in zip(v.queries, opened["runner_up"], strict=True):
        best = sorted(
            (max(float(q @ g) for g, lab in zip(v.gallery, v.gallery_labels) if lab == sku) for sku in {0, 1}),
            reverse=True,
        )
        assert runner_up == pytest.approx(best[1])


def test_pooled_calibration_refuses_without_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="skulens folds"):
        pooled_calibration(tmp_path, 0.95)
    row = {
        "fold": 0,
        "open_set": {
            c: {
                "score": [0.9, 0.8, 0.3, 0.2],
                "correct": [True, True, False, False],
                "known": [True, True, False, False],
            }
            for c in ("clean", "shifted")
        },
    }
    (tmp_path / "fold0").mkdir()
    (tmp_path / "fold0" / "result.json").write_text(json.dumps(row))
    with pytest.raises(ValueError, match=r"fold\(s\) 0 .* have no 'runner_up' per query.*--remeasure"):
        pooled_calibration(tmp_path, 0.95)  # results written before the cue: refused, not quietly the similarity
    record = pooled_calibration(tmp_path, 0.95, score="similarity")
    assert 0.3 < record["threshold"] <= 0.8
    assert record["provenance"]["unknown_queries"] == 4 and record["curve"]
    assert "lookalike" not in record and "runner_up" not in record


def test_pooled_calibration_fits_beta_and_thresholds_the_adjusted_score(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    similarity = rng.uniform(0.5, 1.0, n)
    lookalike = rng.uniform(0.2, 0.95, n)
    known = rng.random(n) < 0.75
    correct = known & (rng.random(n) < 1 / (1 + np.exp(-40 * (similarity - 0.4 * lookalike - 0.55))))
    part = {
        "score": similarity.tolist(),
        "lookalike": lookalike.tolist(),
        "correct": correct.tolist(),
        "known": known.tolist(),
    }
    (tmp_path / "fold0").mkdir()
    (tmp_path / "fold0" / "result.json").write_text(
        json.dumps({"fold": 0, "open_set": {"clean": part, "shifted": part}})
    )
    record = pooled_calibration(tmp_path, 0.9, score="lookalike")
    beta = record["lookalike"]["beta"]
    assert 0.2 < beta < 0.6
    adjusted = similarity - beta * lookalike
    accepted = adjusted >= record["threshold"]
    assert correct[accepted].mean() >= 0.9  # the threshold is on the adjusted score
    assert record["at_threshold"]["accepted"] == 2 * accepted.sum()
    assert "runner_up" not in record


def test_pooled_calibration_fits_gamma_on_the_runner_up_when_asked(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    similarity = rng.uniform(0.5, 1.0, n)
    runner_up = similarity - rng.uniform(0.0, 0.4, n)
    known = rng.random(n) < 0.75
    correct = known & (rng.random(n) < 1 / (1 + np.exp(-40 * (similarity - 0.5 * runner_up - 0.4))))
    part = {
        "score": similarity.tolist(),
        "lookalike": rng.uniform(0.2, 0.95, n).tolist(),  # noise: not the cue asked for
        "runner_up": runner_up.tolist(),
        "correct": correct.tolist(),
        "known": known.tolist(),
    }
    (tmp_path / "fold0").mkdir()
    (tmp_path / "fold0" / "result.json").write_text(
        json.dumps({"fold": 0, "open_set": {"clean": part, "shifted": part}})
    )
    record = pooled_calibration(tmp_path, 0.9)  # the default: the shipped models' score
    gamma = record["runner_up"]["gamma"]
    assert 0.3 < gamma < 0.7 and "lookalike" not in record
    accepted = similarity - gamma * runner_up >= record["threshold"]
    assert correct[accepted].mean() >= 0.9 and record["at_threshold"]["accepted"] == 2 * accepted.sum()
    assert "runner_up" not in pooled_calibration(tmp_path, 0.9, score="similarity")
    with pytest.raises(ValueError, match="'margin'"):
        pooled_calibration(tmp_path, 0.9, score="margin")


def test_compare_folds_table_uses_the_shared_folds(tmp_path, capsys):
    from training.compare_folds import main

    for run, folds in (("a", (0, 1, 2)), ("b", (0, 1))):
        for f in folds:
            (tmp_path / run / f"fold{f}").mkdir(parents=True)
            row = {"fold": f, **evaluate_fold(toy_vectors(), ("c",))}
            (tmp_path / run / f"fold{f}" / "result.json").write_text(json.dumps(row))
    assert main([f"old={tmp_path / 'a'}", f"new={tmp_path / 'b'}"]) == 0
    out = capsys.readouterr().out
    assert "every run has (0, 1)" in out and "| figure | old | new |" in out
    assert "| top-1 clean, all SKUs | 0.750 ± 0.000 | 0.750 ± 0.000 |" in out
    assert "| folds | 2 | 2 |" in out and "| folds | 3 | 2 |" in out
    with pytest.raises(SystemExit, match="no fold"):
        main([f"x={tmp_path / 'nothing'}"])


def test_compare_folds_reads_a_runs_own_result_file(tmp_path, capsys):
    """``LABEL=DIR,RESULT``: the same fold models measured another way (e.g. served at another size)."""
    from training.compare_folds import main

    (tmp_path / "a" / "fold0").mkdir(parents=True)
    row = {"fold": 0, **evaluate_fold(toy_vectors(), ("c",))}
    (tmp_path / "a" / "fold0" / "result.json").write_text(json.dumps(row))
    worse = json.loads(json.dumps(row))
    worse["clean"]["all"] = 0.25
    (tmp_path / "a" / "fold0" / "result-keras-288px.json").write_text(json.dumps(worse))
    assert main([f"256={tmp_path / 'a'}", f"288={tmp_path / 'a'},result-keras-288px.json"]) == 0
    assert "| top-1 clean, all SKUs | 0.750 ± 0.000 | 0.250 ± 0.000 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no fold\\*/result-int8.json"):
        main([f"x={tmp_path / 'a'},result-int8.json"])


def test_shifted_top1_by_scale_band_counts_by_hand():
    """toy shifted queries: right, right, wrong, wrong; scales put the two wrong ones in the small band."""
    from training.scale_study import top1_by_scale

    v = toy_vectors()
    bands = top1_by_scale(v, np.array([0.95, 1.0, 0.61, 0.7]), [0.6, 0.8, 1.0])
    assert bands == [(0.0, 2), (1.0, 2)]  # 1.0 falls in the last band, its upper edge included
    assert top1_by_scale(v, np.array([0.95, 0.65, 0.61, 0.7]), [0.6, 0.8, 1.0]) == [(1 / 3, 3), (1.0, 1)]
    with pytest.raises(ValueError, match="3 scales for 4"):
        top1_by_scale(v, np.array([0.9, 0.9, 0.9]), [0.6, 1.0])
    with pytest.raises(ValueError, match=r"\[1.0, 0.6\]"):
        top1_by_scale(v, np.full(4, 0.9), [1.0, 0.6])
