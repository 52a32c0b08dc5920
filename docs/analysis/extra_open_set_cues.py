"""Analysis: do cues from outside the served vector tell an unknown product from its enrolled look-alike?

Not product code. Run from the repository root (the data from SKULENS_GROCERY_DIR, else ../shared/data/grocery)
after `skulens folds` of the 512-d recipe, seed 0, which leaves each fold's ``vectors-keras.npz`` and
``finetune/model.keras``.

The accepted mistakes at 95 % precision are unknown siblings of enrolled products (Pink Lady taken for Royal Gala,
one God Morgon juice for another). The embedding is trained to ignore light and colour shifts (colour, temperature
and gamma augmentation), and siblings often differ mostly in colour. The cue: the Hellinger distance between the
hue-saturation histogram of the query and that of the reference photo the answer came from (the answer SKU's
nearest photo in the embedding), and its minimum over the answer SKU's 5 nearest photos. Each combination's weights
come from a logistic regression of "the answer is right" on the other three folds, and so does its P = 0.95
threshold (cross-fitted, as ``training.score_study``).

Beside colour, three cues the served vector does not carry or the protocol had not tried:
* ``log_norm``: the log of the neck output's length before the L2 normalisation (the Keras fold model's; feature
  magnitude is a known out-of-distribution cue of classifier-trained networks, and the service throws it away);
* ``purity10``: the share of the query's 10 nearest reference photos that belong to the answer SKU;
* ``flip_gap``: 1 − the cosine between the query's vector and its mirror image's (clean photos only).

Three conditions: the clean val photos, the protocol's "other day" shift, and that shift's light alone (its own
colour-temperature and exposure draws, nothing else), which tells whether the light is what defeats a colour cue.
A fourth row per combination judges the clean-fitted weights and threshold on the other-day photos.

    .venv/bin/python docs/analysis/extra_open_set_cues.py [runs/folds/gem_dim512_seed0]
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedder.preprocess import PAD_VALUE
from evaluation import metrics
from training.data import cached_pixels, grocery_dir, list_image_folder, list_skus
from training.features import embed_pixels
from training.folds import load_vectors
from training.score_study import Stacked, StudyRow, cross_fit
from training.shifts import ShiftConfig, other_day

HUE_BINS, SAT_BINS, GREY_BINS = 18, 3, 4
NEAREST = 5
#: clean photos, the protocol's "other day" shift, and its light alone (colour temperature and exposure)
CONDITIONS = ("clean", "shifted", "light")
LIGHT_ONLY = ShiftConfig(blur_p=0.0, jpeg_quality=(95, 95), scale=(1.0, 1.0), max_rotation=0.0, occlusion_p=0.0)
PAD_TOLERANCE = 3


def hs_histograms(pixels: np.ndarray, stride: int = 2) -> np.ndarray:
    """Per image, a normalised histogram: hue x saturation of coloured pixels, plus value bins of grey ones;
    the letterbox padding left out."""
    sampled = np.asarray(pixels[:, ::stride, ::stride])
    x = sampled.astype(np.float32) / 255.0
    # the letterbox padding, and the band of near-grey pixels that rotation, blur and JPEG leave along its edge
    pad = np.all(np.abs(sampled.astype(np.int16) - PAD_VALUE) <= PAD_TOLERANCE, axis=-1)
    top, low = x.max(axis=-1), x.min(axis=-1)
    chroma = top - low
    sat = np.where(top > 0, chroma / np.maximum(top, 1e-6), 0.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(top == r, ((g - b) / safe) % 6, np.where(top == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    coloured = (sat > 0.2) & (top > 0.15) & ~pad
    grey = ~coloured & ~pad
    h_bin = np.minimum((hue * HUE_BINS).astype(np.int64), HUE_BINS - 1)
    s_bin = np.minimum(((sat - 0.2) / 0.8 * SAT_BINS).astype(np.int64), SAT_BINS - 1)
    v_bin = np.minimum((top * GREY_BINS).astype(np.int64), GREY_BINS - 1)
    n_bins = HUE_BINS * SAT_BINS + GREY_BINS
    bins = np.where(coloured, h_bin * SAT_BINS + np.maximum(s_bin, 0), HUE_BINS * SAT_BINS + v_bin)
    out = np.zeros((len(pixels), n_bins))
    for i in range(len(pixels)):
        keep = coloured[i] | grey[i]
        out[i] = np.bincount(bins[i][keep], minlength=n_bins)
    return np.asarray(out / np.maximum(out.sum(axis=1, keepdims=True), 1), np.float64)


def hellinger(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hellinger distance of histograms ``a`` and ``b`` (same shape)."""
    return np.asarray(np.sqrt(np.maximum(1.0 - np.sum(np.sqrt(a * b), axis=-1), 0.0)), np.float64)


def neck_outputs(model_path: Path, pixels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each photo's neck output before the L2 normalisation (its length is ``log_norm``'s, its direction the
    served vector), from a saved fold model, for each named set of photos."""
    from training.feature_study import feature_model
    from training.train import load_trained_model

    model = load_trained_model(model_path)
    dim, raw = int(model.output_shape[-1]), feature_model(model)
    return {name: embed_pixels(raw, photos)[:, -dim:] for name, photos in pixels.items()}


@dataclass(frozen=True)
class Cues:
    columns: dict[str, np.ndarray]
    correct: np.ndarray
    known: np.ndarray


def fold_cues(
    queries: np.ndarray,
    query_hist: np.ndarray,
    query_labels: np.ndarray,
    gallery: np.ndarray,
    gallery_hist: np.ndarray,
    gallery_labels: np.ndarray,
    fold: set[int],
    n_skus: int,
    norms: np.ndarray,
    flipped: np.ndarray | None = None,
) -> Cues:
    enrolled = np.flatnonzero([lab not in fold for lab in gallery_labels])
    sims = queries @ gallery[enrolled].T
    labels = gallery_labels[enrolled]
    per_sku = metrics.best_score_per_sku(sims, labels, n_skus)
    ranked = -np.sort(-per_sku, axis=1)
    answer = per_sku.argmax(axis=1)
    colour_best, colour_min = np.zeros(len(queries)), np.zeros(len(queries))
    for i in range(len(queries)):
        own = np.flatnonzero(labels == answer[i])
        order = own[np.argsort(-sims[i, own])][:NEAREST]
        d = hellinger(query_hist[i][None], gallery_hist[enrolled[order]])
        colour_best[i], colour_min[i] = d[0], d.min()
    known = np.array([lab not in fold for lab in query_labels])
    top10 = np.argsort(-sims, axis=1)[:, :10]
    purity = (labels[top10] == answer[:, None]).mean(axis=1)
    flip_gap = 1.0 - np.sum(queries * flipped, axis=1) if flipped is not None else np.zeros(len(queries))
    return Cues(
        {
            "similarity": ranked[:, 0],
            "runner_up": ranked[:, 1],
            "colour": colour_best,
            "colour_min5": colour_min,
            "purity10": purity,
            "flip_gap": flip_gap,
            "log_norm": np.log(norms),
        },
        (answer == query_labels) & known,
        known,
    )


def stacked(part: Cues, cues: tuple[str, ...]) -> Stacked:
    return np.c_[tuple(part.columns[c] for c in ("similarity", *cues))], part.correct, part.known


def cross_fitted(parts: list[Cues], cues: tuple[str, ...], judged: list[Cues] | None = None) -> StudyRow:
    """``training.score_study.cross_fit`` of these cues; ``judged``: clean-fitted weights judged on other-day photos."""
    return cross_fit(
        [stacked(p, cues) for p in parts], cues, judged=None if judged is None else [stacked(p, cues) for p in judged]
    )


def main(run: Path) -> None:
    root = grocery_dir()
    skus = tuple(list_skus(root / "train"))
    folds = sorted(p.parent for p in run.glob("fold*/result.json"))
    config = json.loads((folds[0] / "config.json").read_text())
    size, cache = config["input_size"], config["cache_dir"]
    train = list_image_folder(root / "train", class_names=skus)
    val = list_image_folder(root / "val", class_names=skus)
    gallery_hist = hs_histograms(np.asarray(cached_pixels(train, size, cache)))
    val_pixels = np.asarray(cached_pixels(val, size, cache))
    clean_hist = hs_histograms(val_pixels)
    shifted_pixels = np.load(Path(cache) / f"shifted-{val.fingerprint()}-{size}-0.npy")
    light_pixels = other_day(val_pixels, seed=0, config=LIGHT_ONLY)  # the same draws as "shifted", light only
    hists = {"clean": clean_hist, "shifted": hs_histograms(shifted_pixels), "light": hs_histograms(light_pixels)}
    parts: dict[str, list[Cues]] = {cond: [] for cond in CONDITIONS}
    for folder in folds:
        v = load_vectors(folder / "vectors-keras.npz", skus)
        fold = {skus.index(s) for s in json.loads((folder / "result.json").read_text())["fold_skus"]}
        extras_path = folder / "extra-cues-keras.npz"  # this study's own cache
        model_path = folder / "finetune" / "model.keras"
        if not extras_path.is_file() or extras_path.stat().st_mtime < model_path.stat().st_mtime:
            outputs = neck_outputs(model_path, {"clean": val_pixels, "shifted": shifted_pixels, "light": light_pixels})
            np.savez(extras_path, clean=outputs["clean"], shifted=outputs["shifted"], light=outputs["light"])
        with np.load(extras_path) as saved:
            neck = {cond: saved[cond] for cond in CONDITIONS}
        norms = {cond: np.linalg.norm(out, axis=1) for cond, out in neck.items()}
        queries = {"clean": v.queries, "shifted": v.shifted, "light": neck["light"] / norms["light"][:, None]}
        for cond in CONDITIONS:
            parts[cond].append(
                fold_cues(
                    queries[cond],
                    hists[cond],
                    v.query_labels,
                    v.gallery,
                    gallery_hist,
                    v.gallery_labels,
                    fold,
                    len(skus),
                    norms[cond],
                    v.flipped if cond == "clean" else None,
                )
            )
    print(f"{run}: {len(folds)} folds, cross-fitted (weights relative to the similarity's)")
    print("| cues beside the similarity | condition | AUROC | precision | known accepted at P=0.95 | weights |")
    print("| --- | --- | --- | --- | --- | --- |")
    combinations: tuple[tuple[str, ...], ...] = (
        (),
        ("runner_up",),
        ("colour",),
        ("runner_up", "colour"),
        ("runner_up", "colour_min5"),
        ("runner_up", "purity10"),
        ("runner_up", "flip_gap"),
        ("runner_up", "log_norm"),
        ("runner_up", "colour_min5", "log_norm"),
    )
    for cues in combinations:
        for cond in CONDITIONS:
            if "flip_gap" in cues and cond != "clean":  # mirrored vectors of the clean photos only
                continue
            print_row(cond, cross_fitted(parts[cond], cues))
        if "flip_gap" not in cues:
            print_row("shifted, clean-fitted", cross_fitted(parts["clean"], cues, judged=parts["shifted"]))


def print_row(condition: str, r: StudyRow) -> None:
    weights = [round(w, 3) for w in r.weights] if r.cues else []
    print(
        f"| {' + '.join(r.cues) or '—'} | {condition} | {r.auroc:.3f} | {r.precision:.3f} | "
        f"{r.known_accepted:.3f} | {weights} |"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/folds/gem_dim512_seed0"))
