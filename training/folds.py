"""The fold protocol: SKU-disjoint folds that predict how a model does on products it never saw.

For each fold, a model is trained *without* the fold's SKUs (the training recipe of a config,
its ``held_out`` replaced by the fold), then measured on the val photos:

* **closed set**: gallery = every train photo of all SKUs (the fold's SKUs enrolled, not trained
  on); top-1 over all queries, the trained SKUs and the never-trained ones, for the clean photos
  and for the "other day" shift of the same photos (``training/shifts.py``); flip test-time
  augmentation on the clean photos;
* **open set**: gallery = train photos of the trained SKUs only; the fold's queries are unknown
  products. AUROC of the best score, and, at the threshold calibrated for a target precision on
  the *other* folds' pooled scores (cross-fitted: a fold never judges its own threshold), the
  precision of accepted answers and the share of known queries accepted;
* **catalogue**: gallery = one catalogue (studio) photo per SKU, alone and with its synthetic
  views (``embedder/catalogue_views.py``); queries = the store photos.

No checkpoint is chosen on these photos: the model measured is the one a run ends with.
``skulens folds --config C --out D`` runs (and resumes) every fold and writes ``D/summary.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation import metrics
from evaluation.calibrate import calibrate_threshold, fit_beta
from gallery.lookalike import adjusted_score, label_lookalikes

if TYPE_CHECKING:
    from training.config import TrainConfig

#: ``embed(pixels, desc=None) -> vectors``: uint8 pixels ``(n, size, size, 3)`` to unit vectors ``(n, d)``
Embed = Callable[..., np.ndarray]

logger = logging.getLogger(__name__)

CATALOGUE_VIEWS = 8


def sku_folds(
    skus_with_val: list[str], skus_without_val: list[str], n_folds: int = 4, seed: int = 0
) -> list[tuple[str, ...]]:
    """SKU-disjoint folds, balanced in SKUs that have val photos (the only ones that make queries)."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    if len(skus_with_val) < n_folds:
        raise ValueError(f"{len(skus_with_val)} SKUs with val photos cannot fill {n_folds} folds")
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    cursor = 0
    for group in (sorted(skus_with_val), sorted(skus_without_val)):
        for sku in rng.permutation(group).tolist():
            folds[cursor % n_folds].append(sku)
            cursor += 1
    return [tuple(sorted(f)) for f in folds]


@dataclass(frozen=True)
class Vectors:
    """One fold model's embeddings of everything the protocol needs (labels index ``skus``)."""

    skus: tuple[str, ...]
    gallery: np.ndarray
    gallery_labels: np.ndarray
    queries: np.ndarray
    shifted: np.ndarray
    flipped: np.ndarray
    query_labels: np.ndarray
    catalogue: np.ndarray  # (n_skus_with_photo, d)
    catalogue_labels: np.ndarray
    views: np.ndarray  # (n, d) synthetic views of the catalogue photos
    view_labels: np.ndarray


def top1(
    queries: np.ndarray,
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    query_labels: np.ndarray,
    n_skus: int,
    rows: np.ndarray | None = None,
) -> float:
    rows = np.arange(len(queries)) if rows is None else rows
    scores = metrics.best_score_per_sku(queries[rows] @ gallery.T, gallery_labels, n_skus)
    return metrics.top_k_accuracy(scores, query_labels[rows], 1)


def open_set_scores(
    queries: np.ndarray, v: Vectors, fold: set[int], lookalikes: np.ndarray | None = None
) -> dict[str, Any]:
    """Best score, its SKU's lookalike (``gallery.lookalike``), right-or-wrong and known-or-not of
    every query with the fold's SKUs not enrolled (``lookalikes`` per label: computed when not given)."""
    enrolled = np.array([lab not in fold for lab in v.gallery_labels])
    scores = metrics.best_score_per_sku(queries @ v.gallery[enrolled].T, v.gallery_labels[enrolled], len(v.skus))
    known = np.array([lab not in fold for lab in v.query_labels])
    correct = (metrics.true_sku_rank(scores, np.where(known, v.query_labels, -1)) < 1) & known
    if lookalikes is None:
        lookalikes = label_lookalikes(v.gallery[enrolled], v.gallery_labels[enrolled], len(v.skus))
    return {
        "score": scores.max(axis=1),
        "lookalike": lookalikes[scores.argmax(axis=1)],
        "correct": correct,
        "known": known,
    }


def evaluate_fold(v: Vectors, fold_skus: tuple[str, ...]) -> dict[str, Any]:
    fold = {v.skus.index(s) for s in fold_skus}
    n = len(v.skus)
    never = np.flatnonzero([lab in fold for lab in v.query_labels])
    trained = np.flatnonzero([lab not in fold for lab in v.query_labels])
    row: dict[str, Any] = {"queries": len(v.query_labels), "never_trained_queries": len(never)}
    for name, queries in (("clean", v.queries), ("shifted", v.shifted)):
        row[name] = {
            group: top1(queries, v.gallery, v.gallery_labels, v.query_labels, n, rows)
            for group, rows in (("all", None), ("trained", trained), ("never_trained", never))
        }
    tta = v.queries + v.flipped
    tta /= np.linalg.norm(tta, axis=1, keepdims=True)
    row["clean_flip_tta"] = {
        "all": top1(tta, v.gallery, v.gallery_labels, v.query_labels, n),
        "never_trained": top1(tta, v.gallery, v.gallery_labels, v.query_labels, n, never),
    }
    row["open_set"] = {}
    enrolled = np.array([lab not in fold for lab in v.gallery_labels])
    lookalikes = label_lookalikes(v.gallery[enrolled], v.gallery_labels[enrolled], n)  # one gallery, both conditions
    for name, queries in (("clean", v.queries), ("shifted", v.shifted)):
        s = open_set_scores(queries, v, fold, lookalikes)
        row["open_set"][name] = {
            "auroc": metrics.auroc(s["score"][s["known"]], s["score"][~s["known"]]),
            **{k: s[k].tolist() for k in ("score", "lookalike", "correct", "known")},
        }
    with_views = np.concatenate([v.catalogue, v.views])
    with_view_labels = np.concatenate([v.catalogue_labels, v.view_labels])
    row["catalogue"] = {
        "photo_only": {
            "all": top1(v.queries, v.catalogue, v.catalogue_labels, v.query_labels, n),
            "never_trained": top1(v.queries, v.catalogue, v.catalogue_labels, v.query_labels, n, never),
        },
        "with_views": {
            "all": top1(v.queries, with_views, with_view_labels, v.query_labels, n),
            "never_trained": top1(v.queries, with_views, with_view_labels, v.query_labels, n, never),
        },
    }
    return row


def _pooled(parts: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in keys}


def _beta(pooled: dict[str, np.ndarray]) -> float:
    """``fit_beta`` on pooled open-set scores; 0 where they cannot support a fit (all answers right or wrong)."""
    try:
        return fit_beta(pooled["score"], pooled["lookalike"], pooled["correct"]).beta
    except ValueError as exc:
        logger.warning("no lookalike beta (0 used): %s", exc)
        return 0.0


def cross_fitted_thresholds(
    rows: list[dict[str, Any]], condition: str, target: float, lookalike: bool = False
) -> list[dict[str, Any]]:
    """For each fold: the threshold calibrated on the other folds' pooled open-set scores, and what it does here.

    ``lookalike``: the decision score is ``gallery.lookalike.adjusted_score``, its ``beta`` fitted on
    the other folds too (a fold never judges its own beta or threshold).
    """
    keys = ("score", "lookalike", "correct", "known") if lookalike else ("score", "correct", "known")
    out = []
    for i, row in enumerate(rows):
        pooled = _pooled([r["open_set"][condition] for j, r in enumerate(rows) if j != i], keys)
        mine = _pooled([row["open_set"][condition]], keys)
        beta = _beta(pooled) if lookalike else 0.0
        if lookalike:
            pooled["score"] = adjusted_score(pooled["score"], pooled["lookalike"], beta)
            mine["score"] = adjusted_score(mine["score"], mine["lookalike"], beta)
        cal = calibrate_threshold(pooled["score"], pooled["correct"], pooled["known"], target)
        result = metrics.open_set_at_threshold(mine["score"], mine["correct"], mine["known"], cal.threshold)
        known = mine["known"].astype(bool)
        out.append(
            {
                "threshold": cal.threshold,
                "beta": beta,
                "auroc": metrics.auroc(mine["score"][known], mine["score"][~known]),
                "reached_on_other_folds": cal.reached,
                "precision": result.precision,
                "known_acceptance": result.known_acceptance,
                "known_accuracy": result.known_accuracy,
                "unknown_rejection": result.unknown_rejection,
            }
        )
    return out


def summarise(rows: list[dict[str, Any]], target: float = 0.95) -> dict[str, Any]:
    """Mean and spread (population std) over folds of every figure; cross-fitted threshold figures."""

    def stat(values: list[float]) -> dict[str, Any]:
        arr = np.asarray(values, dtype=np.float64)
        return {"mean": float(np.nanmean(arr)), "std": float(np.nanstd(arr)), "folds": arr.tolist()}

    def pick(path: tuple[str, ...]) -> list[float]:
        out = []
        for r in rows:
            value: Any = r
            for key in path:
                value = value[key]
            out.append(float(value))
        return out

    figures = {}
    for cond in ("clean", "shifted"):
        for group in ("all", "trained", "never_trained"):
            figures[f"top1_{cond}_{group}"] = stat(pick((cond, group)))
        figures[f"auroc_{cond}"] = stat(pick(("open_set", cond, "auroc")))
    for group in ("all", "never_trained"):
        figures[f"top1_clean_flip_tta_{group}"] = stat(pick(("clean_flip_tta", group)))
        for kind in ("photo_only", "with_views"):
            figures[f"catalogue_{kind}_{group}"] = stat(pick(("catalogue", kind, group)))
    if len(rows) >= 2:
        with_lookalike = all("lookalike" in r["open_set"]["clean"] for r in rows)  # older results lack it
        for cond in ("clean", "shifted"):
            fitted = cross_fitted_thresholds(rows, cond, target)
            for key in ("precision", "known_acceptance", "known_accuracy", "unknown_rejection", "threshold"):
                figures[f"at_p{int(target * 100)}_{cond}_{key}"] = stat([f[key] for f in fitted])
            if with_lookalike:
                fitted = cross_fitted_thresholds(rows, cond, target, lookalike=True)
                figures[f"auroc_{cond}_lookalike"] = stat([f["auroc"] for f in fitted])
                for key in ("precision", "known_acceptance", "unknown_rejection", "threshold", "beta"):
                    figures[f"at_p{int(target * 100)}_{cond}_lookalike_{key}"] = stat([f[key] for f in fitted])
    return figures


#: the fields of ``Vectors`` that hold embeddings (the rest are labels and the SKU names)
EMBEDDING_FIELDS = tuple(f.name for f in fields(Vectors) if f.name != "skus" and not f.name.endswith("labels"))


def save_vectors(v: Vectors, path: Path) -> None:
    np.savez(path, **{f.name: getattr(v, f.name) for f in fields(Vectors) if f.name != "skus"})


def load_vectors(path: Path, skus: tuple[str, ...]) -> Vectors:
    with np.load(path) as saved:
        return Vectors(skus=skus, **{f.name: saved[f.name] for f in fields(Vectors) if f.name != "skus"})


def cached_vectors(path: Path, skus: tuple[str, ...], make: Callable[[], Vectors]) -> Vectors:
    """The vectors saved at ``path``, else ``make()``'s, saved there for the next study."""
    if path.is_file():
        return load_vectors(path, skus)
    v = make()
    save_vectors(v, path)
    return v


def keras_embed(model_path: Path) -> Embed:
    """``pixels -> vectors`` with a saved Keras model."""
    from training.features import embed_pixels
    from training.train import load_trained_model

    model = load_trained_model(model_path)
    return lambda pixels, desc=None: embed_pixels(model, pixels, desc=desc)


def embed_fold(
    embed: Embed, all_skus: tuple[str, ...], root: Path, size: int, cache_dir: str, seed: int = 0
) -> Vectors:
    """Embed gallery, queries (clean, shifted, flipped) and catalogue photos with ``embed(pixels)``."""
    from embedder.catalogue_views import catalogue_views
    from training.data import cached_pixels, decode_images, list_image_folder
    from training.shifts import other_day

    train = list_image_folder(root / "train", class_names=all_skus)
    val = list_image_folder(root / "val", class_names=all_skus)
    val_pixels = np.asarray(cached_pixels(val, size, cache_dir))
    shifted_path = Path(cache_dir) / f"shifted-{val.fingerprint()}-{size}-{seed}.npy"
    if shifted_path.is_file():
        shifted = np.load(shifted_path)
    else:
        shifted = other_day(val_pixels, seed=seed)
        shifted_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(shifted_path, shifted)
    photos = [(i, root / "iconic" / f"{s}.jpg") for i, s in enumerate(all_skus)]
    photos = [(i, p) for i, p in photos if p.is_file()]
    cat_pixels = decode_images([str(p) for _, p in photos], size)
    views, view_labels = [], []
    for (label, _), pixels in zip(photos, cat_pixels):
        views.extend(catalogue_views(pixels, CATALOGUE_VIEWS, size, seed=seed))
        view_labels.extend([label] * CATALOGUE_VIEWS)
    return Vectors(
        skus=all_skus,
        gallery=embed(np.asarray(cached_pixels(train, size, cache_dir)), desc="gallery"),
        gallery_labels=train.labels.astype(np.int64),
        queries=embed(val_pixels),
        shifted=embed(shifted),
        flipped=embed(val_pixels[:, :, ::-1].copy()),
        query_labels=val.labels.astype(np.int64),
        catalogue=embed(cat_pixels),
        catalogue_labels=np.array([i for i, _ in photos], np.int64),
        views=embed(np.stack(views)),
        view_labels=np.asarray(view_labels, np.int64),
    )


def fold_splits(root: Path, n_folds: int = 4, fold_seed: int = 0) -> list[tuple[str, ...]]:
    """``sku_folds`` of the data under ``root`` (its ``train`` and ``val`` folders)."""
    from training.data import list_skus

    all_skus = list_skus(root / "train")
    with_val = set(list_skus(root / "val"))
    return sku_folds(
        [s for s in all_skus if s in with_val], [s for s in all_skus if s not in with_val], n_folds, fold_seed
    )


def run_folds(
    config: TrainConfig,
    out: str | Path,
    folds: list[int] | None = None,
    n_folds: int = 4,
    fold_seed: int = 0,
    target: float = 0.95,
    precision: str | None = None,
) -> dict[str, Any]:
    """Train (resuming) and evaluate each fold of ``config``'s recipe; write per-fold JSON and the summary.

    ``precision`` (``float32``, ``int8``, ...): measure each fold's model exported to LiteRT at that
    precision instead of the Keras model (``result-<precision>.json``, ``summary-<precision>.*``).
    """
    from training.data import grocery_dir, list_skus
    from training.train import run

    out = Path(out)
    root = Path(config.data_dir) if config.data_dir else grocery_dir()
    all_skus = tuple(list_skus(root / "train"))
    splits = fold_splits(root, n_folds, fold_seed)
    chosen = list(range(n_folds)) if folds is None else folds
    rows = []
    for f in chosen:
        directory = out / f"fold{f}"
        result_path = directory / (f"result-{precision}.json" if precision else "result.json")
        if result_path.is_file():
            rows.append(json.loads(result_path.read_text()))
            continue
        fold_config = replace(
            config, held_out=splits[f], distill_from=tuple(p.replace("{fold}", str(f)) for p in config.distill_from)
        )
        if precision:  # measure the model a plain run left; never train here
            model_path = directory / ("finetune" if config.schedule == "finetune" else "stage2") / "model.keras"
            if not model_path.is_file():
                raise FileNotFoundError(
                    f"no trained model {str(model_path)!r}: run `skulens folds` without --precision first"
                )
        else:
            model_path = list(run(fold_config, directory, stage="all", resume=True).values())[-1]
        if precision:
            from training.fold_export import litert_embed

            embed = litert_embed(model_path, directory / f"litert-{precision}", precision, fold_config, root)
        else:
            embed = keras_embed(model_path)
        vectors = embed_fold(embed, all_skus, root, config.input_size, config.cache_dir)
        save_vectors(vectors, directory / f"vectors-{precision or 'keras'}.npz")  # for studies over runs
        row = {
            "fold": f,
            "fold_skus": list(splits[f]),
            "model": str(model_path),
            "precision": precision or "keras",
            **evaluate_fold(vectors, splits[f]),
        }
        result_path.write_text(json.dumps(row) + "\n")
        rows.append(row)
        logger.info("fold %d: %s", f, json.dumps({k: row[k] for k in ("clean", "shifted", "catalogue")}))
    summary = {
        "config": config.to_dict(),
        "folds": chosen,
        "n_folds": n_folds,
        "fold_seed": fold_seed,
        "fold_skus": {str(f): list(splits[f]) for f in chosen},
        "target_precision": target,
        "figures": summarise(rows, target),
    }
    suffix = f"-{precision}" if precision else ""
    summary["precision"] = precision or "keras"
    (out / f"summary{suffix}.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / f"summary{suffix}.md").write_text(summary_markdown(summary) + "\n")
    return summary


FIGURE_NAMES = {
    "top1_clean_all": "top-1 clean, all SKUs",
    "top1_clean_trained": "top-1 clean, trained SKUs",
    "top1_clean_never_trained": "top-1 clean, never-trained SKUs",
    "top1_shifted_all": "top-1 other-day, all SKUs",
    "top1_shifted_trained": "top-1 other-day, trained SKUs",
    "top1_shifted_never_trained": "top-1 other-day, never-trained SKUs",
    "top1_clean_flip_tta_all": "top-1 clean + flip TTA, all",
    "top1_clean_flip_tta_never_trained": "top-1 clean + flip TTA, never-trained",
    "auroc_clean": "open-set AUROC, clean",
    "auroc_shifted": "open-set AUROC, other-day",
    "auroc_clean_lookalike": "open-set AUROC, clean, lookalike-adjusted score (cross-fitted beta)",
    "auroc_shifted_lookalike": "open-set AUROC, other-day, lookalike-adjusted score (cross-fitted beta)",
    "catalogue_photo_only_all": "catalogue photo only: top-1 all",
    "catalogue_photo_only_never_trained": "catalogue photo only: top-1 never-trained",
    "catalogue_with_views_all": "catalogue photo + synthetic views: top-1 all",
    "catalogue_with_views_never_trained": "catalogue photo + synthetic views: top-1 never-trained",
}


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = ["| figure | mean | std | per fold |", "| --- | --- | --- | --- |"]
    for key, value in summary["figures"].items():
        name = FIGURE_NAMES.get(key, key.replace("_", " "))
        folds = " / ".join(f"{x:.3f}" for x in value["folds"])
        lines.append(f"| {name} | {value['mean']:.4f} | {value['std']:.4f} | {folds} |")
    return "\n".join(lines)


def pooled_calibration(
    out: Path, target: float, conditions: tuple[str, ...] = ("clean", "shifted"), result_name: str = "result.json"
) -> dict[str, Any]:
    """Threshold for ``target`` on the open-set scores of every fold in ``out`` pooled (clean and other-day).

    The fold models never saw their fold's SKUs, so those queries are genuine unknown products;
    a model trained on every SKU has none left to calibrate with, hence the fold models' scores.
    """
    from evaluation.calibrate import calibrate_for_till, calibration_record

    rows = [json.loads(p.read_text()) for p in sorted(Path(out).glob(f"fold*/{result_name}"))]
    if not rows:
        raise FileNotFoundError(f"no fold*/result.json under {str(out)!r}: run `skulens folds` first")
    parts = [r["open_set"][c] for r in rows for c in conditions]
    scores, correct, known = (np.concatenate([np.asarray(p[k]) for p in parts]) for k in ("score", "correct", "known"))
    lookalike: dict[str, Any] | None = None
    if all("lookalike" in p for p in parts) and 0 < correct.sum() < len(correct):
        look = np.concatenate([np.asarray(p["lookalike"]) for p in parts])
        fit = fit_beta(scores, look, correct)
        scores = adjusted_score(scores, look, fit.beta)
        lookalike = {
            "beta": fit.beta,
            "score": "best similarity - beta x the cosine between the SKU's reference centroid and the "
            "nearest other enrolled SKU's (gallery.lookalike)",
            "fit": {
                "method": "logistic regression of a right answer on (similarity, lookalike)",
                "weights": list(fit.weights),
                "samples": fit.samples,
            },
        }
    calibration = calibrate_for_till(scores, correct.astype(bool), known.astype(bool), target)
    summary = json.loads((Path(out) / "summary.json").read_text()) if (Path(out) / "summary.json").is_file() else {}
    record = calibration_record(
        calibration,
        scores,
        correct,
        known,
        "fold models of this recipe",
        {
            "fold_run": str(out),
            "fold_results": result_name,
            "folds": [r["fold"] for r in rows],
            "conditions": list(conditions),
            "fold_seed": summary.get("fold_seed"),
            "recipe": summary.get("config"),
        },
    )
    if lookalike is not None:
        record["lookalike"] = lookalike
    return record
