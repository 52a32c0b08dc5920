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
This module makes the folds, trains and embeds; ``training.fold_metrics`` measures a fold's vectors,
``training.fold_summary`` summarises the folds, ``training.fold_calibration`` calibrates from them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.fold_metrics import Vectors, evaluate_fold
from training.fold_summary import summarise, summary_markdown

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


def save_vectors(v: Vectors, path: Path) -> None:
    np.savez(path, **{f.name: getattr(v, f.name) for f in fields(Vectors) if f.name != "skus"})


def load_vectors(path: Path, skus: tuple[str, ...]) -> Vectors:
    with np.load(path) as saved:
        return Vectors(skus=skus, **{f.name: saved[f.name] for f in fields(Vectors) if f.name != "skus"})


def cached_vectors(
    path: Path, skus: tuple[str, ...], make: Callable[[], Vectors], source: Path | None = None
) -> Vectors:
    """The vectors saved at ``path``, else ``make()``'s, saved there for the next study; made again when
    ``source`` (the model they come from) is newer than the saved file."""
    if path.is_file() and (source is None or path.stat().st_mtime >= source.stat().st_mtime):
        return load_vectors(path, skus)
    if path.is_file():
        logger.info("%s is older than %s: embedding again", path, source)
    v = make()
    save_vectors(v, path)
    return v


def keras_embed(model_path: Path, serve_size: int | None = None) -> Embed:
    """``pixels -> vectors`` with a saved Keras model (rebuilt for ``serve_size`` px when given)."""
    from training.features import embed_pixels
    from training.train import load_trained_model

    model = load_trained_model(model_path, serve_size)
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


def variant_tag(precision: str | None, serve_size: int | None) -> str:
    """How a measurement's files are named: ``""`` (Keras, training size), ``float32``, ``keras-288px``, ``float32-288px``."""
    if serve_size is None:
        return precision or ""
    return f"{precision or 'keras'}-{serve_size}px"


def result_file(tag: str) -> str:
    """A fold's result file for the measurement ``tag`` (``variant_tag``): ``result.json`` or ``result-<tag>.json``."""
    return f"result-{tag}.json" if tag else "result.json"


def vectors_file(tag: str) -> str:
    """A fold's saved vectors for the measurement ``tag`` (``variant_tag`` of a precision, ``keras`` for the Keras model)."""
    return f"vectors-{tag}.npz"


def fold_splits(root: Path, n_folds: int = 4, fold_seed: int = 0) -> list[tuple[str, ...]]:
    """``sku_folds`` of the data under ``root`` (its ``train`` and ``val`` folders)."""
    from training.data import list_skus

    all_skus = list_skus(root / "train")
    with_val = set(list_skus(root / "val"))
    return sku_folds(
        [s for s in all_skus if s in with_val], [s for s in all_skus if s not in with_val], n_folds, fold_seed
    )


@dataclass(frozen=True)
class FoldRun:
    """A ``skulens folds`` output folder as the ``*_study`` modules read it."""

    config: dict[str, Any]  # the first fold's config.json
    root: Path  # the data the folds were measured on
    skus: tuple[str, ...]
    folds: tuple[tuple[Path, tuple[str, ...]], ...]  # (fold folder, the SKUs it never trained on)


def read_fold_run(run: Path, min_folds: int = 2) -> FoldRun:
    """The folds of ``run`` with a ``result.json``; ``SystemExit`` with fewer than ``min_folds`` (the
    cross-fitted threshold figures need another fold to fit on)."""
    from training.data import grocery_dir, list_skus

    folders = sorted(p.parent for p in run.glob("fold*/result.json"))
    if len(folders) < min_folds:
        raise SystemExit(f"need >= {min_folds} folds with a result.json under {str(run)!r}, found {len(folders)}")
    config = json.loads((folders[0] / "config.json").read_text())
    root = Path(config["data_dir"]) if config.get("data_dir") else grocery_dir()
    folds = tuple((f, tuple(json.loads((f / "result.json").read_text())["fold_skus"])) for f in folders)
    return FoldRun(config, root, tuple(list_skus(root / "train")), folds)


def earlier_result(directory: Path, name: str, fold_config: TrainConfig) -> dict[str, Any] | None:
    """The fold's ``name`` result from an earlier run into the same folder, when that run trained this recipe
    on this fold's SKUs (its ``config.json``, ``distill_from`` aside, and its held-out SKUs); else None, logged."""
    from training.config import TrainConfig

    path, saved = directory / name, directory / "config.json"
    if not path.is_file():
        return None
    row: dict[str, Any] = json.loads(path.read_text())
    if saved.is_file():
        earlier = replace(TrainConfig.load(saved), distill_from=())
        if earlier.to_dict() == fold_config.to_dict() and row.get("fold_skus") == list(fold_config.held_out):
            return row
    logger.warning("%s: another recipe or split than this run's; left out of the summary", path)
    return None


def run_folds(
    config: TrainConfig,
    out: str | Path,
    folds: list[int] | None = None,
    n_folds: int = 4,
    fold_seed: int = 0,
    target: float = 0.95,
    precision: str | None = None,
    serve_size: int | None = None,
    remeasure: bool = False,
) -> dict[str, Any]:
    """Train (resuming) and evaluate each fold of ``config``'s recipe; write per-fold JSON and the summary.

    ``precision`` (``float32``, ``int8``, ...): measure each fold's model exported to LiteRT at that
    precision instead of the Keras model (``result-<precision>.json``, ``summary-<precision>.*``).
    ``serve_size``: measure each fold's model served at that input size instead of the one it was
    trained at (``embedder.model.at_input_size``; every photo decoded and shifted at that size;
    ``result-<precision or keras>-<size>px.json``). Neither option ever trains.
    ``remeasure``: a fold already measured is measured again from the vectors it saved (after the
    protocol gained a figure); nothing is trained or embedded.
    """
    from training.data import grocery_dir, list_skus
    from training.train import run

    out = Path(out)
    root = Path(config.data_dir) if config.data_dir else grocery_dir()
    all_skus = tuple(list_skus(root / "train"))
    splits = fold_splits(root, n_folds, fold_seed)
    chosen = list(range(n_folds)) if folds is None else folds
    rows = []
    if serve_size == config.input_size:  # the size it was trained at: the plain measurement
        serve_size = None
    tag = variant_tag(precision, serve_size)
    size = config.input_size if serve_size is None else serve_size
    for f in chosen:
        directory = out / f"fold{f}"
        result_path = directory / result_file(tag)
        vectors_path = directory / vectors_file(variant_tag(precision or "keras", serve_size))
        if remeasure and not result_path.is_file():
            raise FileNotFoundError(
                f"cannot measure fold {f} again: it has no {result_path.name} in {str(directory)!r} "
                "(--remeasure never trains or embeds; run it without --remeasure first)"
            )
        if result_path.is_file():
            row = json.loads(result_path.read_text())
            if remeasure:
                if not vectors_path.is_file():
                    raise FileNotFoundError(
                        f"cannot measure fold {f} again: {str(vectors_path)!r} (the vectors it was measured on) is gone"
                    )
                row.update(evaluate_fold(load_vectors(vectors_path, all_skus), tuple(row["fold_skus"])))
                result_path.write_text(json.dumps(row) + "\n")
                logger.info("fold %d: measured again from %s", f, vectors_path)
            rows.append(row)
            continue
        fold_config = replace(
            config, held_out=splits[f], distill_from=tuple(p.replace("{fold}", str(f)) for p in config.distill_from)
        )
        if tag:  # measure the model a plain run left; never train here
            model_path = directory / ("finetune" if config.schedule == "finetune" else "stage2") / "model.keras"
            if not model_path.is_file():
                raise FileNotFoundError(
                    f"no trained model {str(model_path)!r}: "
                    "run `skulens folds` without --precision or --serve-size first"
                )
        else:
            model_path = list(run(fold_config, directory, stage="all", resume=True).values())[-1]
        if precision:
            from training.fold_export import litert_embed

            embed = litert_embed(model_path, directory / f"litert-{tag}", precision, fold_config, root, serve_size)
        else:
            embed = keras_embed(model_path, serve_size)
        vectors = embed_fold(embed, all_skus, root, size, config.cache_dir)
        save_vectors(vectors, vectors_path)
        row = {
            "fold": f,
            "fold_skus": list(splits[f]),
            "model": str(model_path),
            "precision": precision or "keras",
            "input_size": size,
            **evaluate_fold(vectors, splits[f]),
        }
        result_path.write_text(json.dumps(row) + "\n")
        rows.append(row)
        logger.info("fold %d: %s", f, json.dumps({k: row[k] for k in ("clean", "shifted", "catalogue")}))
    # the summary covers every fold measured in ``out`` so far (a run of --folds 2,3 after 0,1 summarises all four)
    for f in sorted(set(range(n_folds)) - set(chosen)):
        fold_config = replace(config, held_out=splits[f], distill_from=())
        earlier = earlier_result(out / f"fold{f}", result_file(tag), fold_config)
        if earlier is not None:
            rows.append(earlier)
    rows.sort(key=lambda row: row["fold"])
    summary = {
        "config": config.to_dict(),
        "folds": [row["fold"] for row in rows],
        "n_folds": n_folds,
        "fold_seed": fold_seed,
        "fold_skus": {str(row["fold"]): list(row["fold_skus"]) for row in rows},
        "target_precision": target,
        "figures": summarise(rows, target),
    }
    suffix = f"-{tag}" if tag else ""
    summary["precision"] = precision or "keras"
    summary["input_size"] = size
    (out / f"summary{suffix}.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / f"summary{suffix}.md").write_text(summary_markdown(summary) + "\n")
    return summary
