"""Benchmark 1: embedding throughput (img/s), Keras vs LiteRT fp32 / fp16 / dynamic-int8, side by side.

Models: MobileNetV3Large + Dense(256) head at 224 px with random weights (speed does not
depend on the weight values), and the shipped model (``embedder/default_model``) with the
trained Keras model and fp16/int8 exports of it when a training run left one in ``runs/``.
Every variant runs with 2 threads (LiteRT fp32 also with 1, to show the scaling) at batch 1,
16 and 32, in ``--rounds`` interleaved rounds of ``--seconds`` each, LiteRT variants before
Keras ones in each round; the median round is reported, and the fastest round beside it
(this shared virtual machine's speed varies from second to second). Each variant's recall@1 on the grocery
val photos (gallery: every train photo, 61 SKUs) and its agreement with the fp32 LiteRT
embeddings of the same weights are measured on real photos.

The machine's floating-point peak is measured, not assumed: a 4096x4096 float32 matmul in
NumPy (OpenBLAS) on 2 threads, best of several repeats, in a child process.

    .venv/bin/python -m bench.embedding [--seconds 2] [--rounds 3] [--no-recall]

``--models LABEL=DIR,...`` measures only those LiteRT model folders, at their own input size,
each with every ``--threads`` count (e.g. the shipped float32 model beside its int8 and
int8_float_head exports, on 1 and 2 threads, at ``--batches 1,16``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    CACHE_DIR,
    ROOT,
    Run,
    decoded,
    keras_v3large,
    photos,
    shipped_model_dir,
    skip_without_grocery,
    table,
    v3large_export,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import keras
    import numpy as np

THREADS = 2
BATCHES = (1, 16, 32)
MACS_V3L_ISSUE = 0.22e9  # the issue's figure for MobileNetV3Large at 224 px

PEAK_CODE = r"""
import json, sys, time, numpy as np
n, reps = int(sys.argv[1]), int(sys.argv[2])
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
a @ b
times = []
for _ in range(reps):
    t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)
flops = 2.0 * n ** 3
print(json.dumps({"n": n, "reps": reps, "best_gflops": flops / min(times) / 1e9,
                  "median_gflops": flops / sorted(times)[len(times) // 2] / 1e9}))
"""


def measure_peak(threads: int, n: int = 4096, reps: int = 7) -> dict[str, Any]:
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    out = subprocess.run(
        [sys.executable, "-c", PEAK_CODE, str(n), str(reps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return {"threads": threads, **json.loads(out)}


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one image through a Keras model (conv, depthwise conv, dense)."""
    import keras

    total = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            _, h, w, c = layer.output.shape
            total += h * w * c * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            total += h * w * c_out * c_in * kh * kw // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += int(layer.input.shape[-1]) * layer.units
    return int(total)


# --- variants -------------------------------------------------------------------
class Embeds(Protocol):
    """What a variant measures: ``Embedder`` or ``KerasCall``."""

    input_size: int

    def embed(self, pixels: np.ndarray) -> np.ndarray: ...


class Variant:
    def __init__(
        self,
        label: str,
        weights: str,
        runtime: str,
        precision: str,
        factory: Callable[[], Embeds],
        macs: int | None,
        file_bytes: int | None = None,
    ) -> None:
        self.label, self.weights, self.runtime, self.precision = label, weights, runtime, precision
        self.factory, self.macs, self.file_bytes = factory, macs, file_bytes
        self._embedder: Embeds | None = None
        # filled by the recall pass (None where it did not run or does not apply)
        self.recall1: float | None = None
        self.recall1_held: float | None = None
        self.cosine_to_fp32: float | None = None

    @property
    def embedder(self) -> Embeds:
        if self._embedder is None:
            self._embedder = self.factory()
        return self._embedder


class KerasCall:
    """The Keras model called through one traced ``tf.function`` (no ``predict`` loop overhead)."""

    def __init__(self, model: keras.Model) -> None:
        import tensorflow as tf

        self.model = model
        self.version = "keras-call"
        self.embedding_dim = int(model.output_shape[-1])
        self.input_size = int(model.input_shape[1])
        self._fn = tf.function(lambda x: model(tf.cast(x, tf.float32), training=False), reduce_retracing=True)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.asarray(self._fn(pixels), dtype=np.float32)


def litert_variant(label: str, weights: str, directory: Path, macs: int | None, threads: int = THREADS) -> Variant:
    from embedder.artifact import load_artifact
    from embedder.runtime import LiteRTEmbedder

    artifact = load_artifact(directory)
    return Variant(
        label,
        weights,
        "LiteRT",
        artifact.precision,
        lambda: LiteRTEmbedder(artifact, num_threads=threads),
        macs,
        artifact.tflite_path.stat().st_size,
    )


def keras_variants(label: str, weights: str, model: keras.Model, macs: int) -> list[Variant]:
    from embedder.runtime import KerasEmbedder

    return [
        Variant(
            f"{label} Keras predict",
            weights,
            "Keras (KerasEmbedder: model.predict)",
            "float32",
            lambda: KerasEmbedder(model, version="keras", batch_size=32),
            macs,
        ),
        Variant(
            f"{label} Keras call", weights, "Keras (tf.function model call)", "float32", lambda: KerasCall(model), macs
        ),
    ]


def find_trained(run: Run, explicit: str | None) -> Path | None:
    """The trained ``model.keras`` to measure: ``--trained-keras``; else the one under runs/ whose
    training_meta.json matches the shipped model's card (backbone, stage, val recall@1); else
    ``runs/shipped/stage2/model.keras``; else the newest trained one under runs/."""
    if explicit:
        return Path(explicit)
    runs = ROOT / "runs"
    candidates: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(runs.glob("**/model.keras"), key=lambda p: p.stat().st_mtime) if runs.is_dir() else []:
        meta_path = path.parent / "training_meta.json"
        if meta_path.is_file() and json.loads(meta_path.read_text()).get("trained"):
            candidates.append((path, json.loads(meta_path.read_text())))
    shipped = shipped_model_dir()
    if shipped is not None:
        from embedder.artifact import load_artifact

        card = load_artifact(shipped)
        candidate: Path
        for candidate, meta in reversed(candidates):
            if (
                meta.get("backbone") == card.backbone
                and meta.get("stage") == card.extra.get("stage")
                and meta.get("val_recall_at_1") == card.extra.get("val_recall_at_1")
            ):
                return candidate
        run.note("no model.keras under runs/ matches the shipped model's card (backbone, stage, val_recall_at_1)")
    default = runs / "shipped" / "stage2" / "model.keras"
    if default.is_file():
        return default
    return candidates[-1][0] if candidates else None


def build_variants(run: Run, want_trained: bool, trained_keras: str | None = None) -> list[Variant]:
    import keras

    model = keras_v3large(seed=0)
    macs_v3l = count_macs(model)
    run.data["macs"] = {"mobilenet_v3_large_224_head256": macs_v3l}
    variants = keras_variants("V3L", "random", model, macs_v3l)
    for precision in ("float32", "float16", "dynamic_int8"):
        variants.append(litert_variant(f"V3L LiteRT {precision}", "random", v3large_export(precision), macs_v3l))
    variants.append(litert_variant("V3L LiteRT float32, 1 thread", "random", v3large_export("float32"), macs_v3l, 1))

    if not want_trained:
        return variants
    shipped = shipped_model_dir()
    keras_path = find_trained(run, trained_keras)
    macs_trained = None
    trained_model = None
    if keras_path is not None:
        from embedder.export import export_model

        meta = json.loads((keras_path.parent / "training_meta.json").read_text())
        trained_model = keras.models.load_model(keras_path)
        macs_trained = count_macs(trained_model)
        run.data["macs"][f"{meta['backbone']}_{meta['input_size']}_trained"] = macs_trained
        run.note(
            f"trained Keras model: {keras_path.relative_to(ROOT)} (stage {meta.get('stage')}, "
            f"backbone {meta['backbone']})"
        )
        variants += keras_variants("trained", "trained", trained_model, macs_trained)
        stamp = f"{int(keras_path.stat().st_mtime)}-{keras_path.stat().st_size}"
        for precision in ("float32", "float16", "dynamic_int8"):
            directory = CACHE_DIR / "models" / f"trained-{stamp}-{precision}"
            if not (directory / "model.tflite").is_file():
                export_model(
                    trained_model,
                    directory,
                    backbone=meta["backbone"],
                    input_size=meta["input_size"],
                    embedding_dim=meta["embedding_dim"],
                    weights_origin=meta["weights_origin"],
                    trained=True,
                    precision=precision,
                )
            variants.append(
                litert_variant(f"trained LiteRT {precision} (exported here)", "trained", directory, macs_trained)
            )
            if precision == "float32" and shipped is not None:
                from embedder.artifact import load_artifact

                same = load_artifact(directory).version == load_artifact(shipped).version
                run.data["trained_fp32_export_is_byte_identical_to_shipped"] = same
                run.note(
                    f"the fp32 export of {keras_path.relative_to(ROOT)} made here "
                    f"{'is byte-identical to' if same else 'differs from'} the shipped model.tflite "
                    f"(content-hash versions {load_artifact(directory).version} / {load_artifact(shipped).version})"
                )
    else:
        run.note(
            "no trained Keras model (runs/**/model.keras with training_meta.json) found: "
            "the trained model's Keras/fp16/int8 variants are not measured"
        )
    if shipped is not None:
        variants.append(
            litert_variant("shipped LiteRT (embedder/default_model)", "trained (shipped)", shipped, macs_trained)
        )
    else:
        run.note("no shipped model in embedder/default_model")
    if keras_path is None and ROOT.joinpath("runs").is_dir():
        for directory in sorted({p.parent for p in (ROOT / "runs").glob("**/model.tflite")}):
            variants.append(litert_variant(f"runs LiteRT {directory.relative_to(ROOT)}", "trained?", directory, None))
    return variants


# --- measurements ---------------------------------------------------------------
def images_per_second(embedder: Embeds, pixels: np.ndarray, seconds: float) -> float:
    embedder.embed(pixels)  # warm-up (first call plans memory / traces)
    embedder.embed(pixels)
    done, started = 0, time.perf_counter()
    while True:
        embedder.embed(pixels)
        done += len(pixels)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def recall_pass(variants: list[Variant], grocery: Path, run: Run) -> None:
    import numpy as np

    from evaluation.data import HELD_OUT_SKUS
    from evaluation.metrics import recall_at_k

    gallery = photos(grocery / "train")
    queries = photos(grocery / "val")
    sku_ids = {s: i for i, s in enumerate(sorted({s for s, _ in gallery}))}
    g_labels = np.array([sku_ids[s] for s, _ in gallery])
    q_labels = np.array([sku_ids.get(s, -1) for s, _ in queries])
    held_out = set(HELD_OUT_SKUS)
    held = np.array([s in held_out for s, _ in queries])
    g_px = decoded([p for _, p in gallery], 224, "grocery-train")
    q_px = decoded([p for _, p in queries], 224, "grocery-val")
    run.data["recall_setup"] = {
        "gallery_photos": len(gallery),
        "gallery_skus": len(sku_ids),
        "query_photos": len(queries),
        "query_skus": len({s for s, _ in queries}),
        "held_out_query_photos": int(held.sum()),
    }
    embedded: list[tuple[Variant, np.ndarray]] = []
    for v in variants:
        if v.embedder.input_size != 224 or "1 thread" in v.label:
            continue
        started = time.perf_counter()
        gv = np.concatenate([v.embedder.embed(g_px[i : i + 32]) for i in range(0, len(g_px), 32)])
        qv = np.concatenate([v.embedder.embed(q_px[i : i + 32]) for i in range(0, len(q_px), 32)])
        similarity = qv @ gv.T
        v.recall1 = recall_at_k(similarity, g_labels, q_labels, ks=(1,))[1]
        v.recall1_held = recall_at_k(similarity[held], g_labels, q_labels[held], ks=(1,))[1] if held.any() else None
        embedded.append((v, qv))
        print(f"  recall pass {v.label}: recall@1 {v.recall1:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    # agreement: mean cosine of the val embeddings with those of the fp32 LiteRT model of the same weights
    reference = {}
    for v, qv in embedded:
        if v.runtime == "LiteRT" and v.precision == "float32" and group(v) not in reference:
            reference[group(v)] = qv
    for v, qv in embedded:
        ref = reference.get(group(v))
        v.cosine_to_fp32 = float(np.mean(np.sum(qv * ref, axis=1))) if ref is not None else None


def group(v: Variant) -> str:
    """Variants with the same weights: the random MobileNetV3Large, or the trained (and shipped) model."""
    return "random" if v.weights == "random" else "trained"


def parse_counts(flag: str, text: str) -> tuple[int, ...]:
    """``"1,16"`` → ``(1, 16)``; positive integers only."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise SystemExit(f"{flag} must be comma-separated positive integers, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise SystemExit(f"{flag} must be comma-separated positive integers, got {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per variant, batch and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is reported)")
    parser.add_argument("--no-recall", action="store_true", help="skip recall@1 on the grocery photos")
    parser.add_argument("--no-trained", action="store_true", help="only the random-weights MobileNetV3Large")
    parser.add_argument("--trained-keras", help="the trained model.keras to measure (default: found under runs/)")
    parser.add_argument("--only", help="comma-separated substrings: measure only variants whose label matches")
    parser.add_argument(
        "--models",
        help="comma-separated LABEL=DIR: measure only these LiteRT model folders "
        "(e.g. the shipped float32 model beside its int8 export), side by side",
    )
    parser.add_argument(
        "--threads", default=str(THREADS), help="with --models: comma-separated LiteRT thread counts (default 2)"
    )
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="comma-separated batch sizes")
    parser.add_argument("--name", default="embedding", help="results file name")
    args = parser.parse_args(argv)
    batches = parse_counts("--batches", args.batches)
    threads = parse_counts("--threads", args.threads)

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    run = Run(args.name)
    run.data["random_weights_identical_across_variants"] = True  # keras_v3large sets Keras' global seed
    run.data["settings"] = {
        "threads": THREADS,
        "batches": list(batches),
        "seconds": args.seconds,
        "rounds": args.rounds,
        "input": "uint8 random pixels at each model's input size (224 unless --models)",
    }

    peak = [measure_peak(1), measure_peak(THREADS)]
    run.data["peak"] = peak
    mhz = next(
        (
            float(line.split(":")[1])
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("cpu MHz")
        ),
        None,
    )
    if mhz:  # an estimate only: clock as the (virtual) CPU reports it, 2 x 256-bit FMA per cycle (AVX2 + FMA, Zen 3)
        run.data["theoretical_peak_estimate"] = {
            "cpu_mhz_reported": mhz,
            "flop_per_cycle_per_core": 32,
            "cores": THREADS,
            "gflops": 2 * 16 * mhz / 1000 * THREADS,
            "assumption": "2 FMA pipes x 8 float32 lanes x 2 FLOP per cycle per core at the reported clock; "
            "boost clocks would raise it",
        }
    peak2 = peak[1]["best_gflops"]
    print(
        table(
            [
                {
                    "threads": p["threads"],
                    "matmul": f"{p['n']}x{p['n']} f32",
                    "best GFLOP/s": p["best_gflops"],
                    "median GFLOP/s": p["median_gflops"],
                }
                for p in peak
            ]
        ),
        flush=True,
    )

    if args.models:
        pairs = [(label, directory) for label, directory in (item.split("=", 1) for item in args.models.split(","))]
        variants = [
            litert_variant(f"{label}, {n} thread{'s' * (n > 1)}", "trained", Path(directory), None, n)
            for label, directory in pairs
            for n in threads
        ]
        run.data["macs"] = {}
        run.data["models"] = dict(pairs)
        run.data["settings"]["threads"] = list(threads)
    else:
        variants = build_variants(run, want_trained=not args.no_trained, trained_keras=args.trained_keras)
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        variants = [v for v in variants if any(k in v.label for k in keys)]
    variants.sort(key=lambda v: v.runtime != "LiteRT")  # LiteRT first: TF's pools may spin after Keras calls
    rng = np.random.default_rng(0)
    sizes = sorted({v.embedder.input_size for v in variants})
    pixels = {(s, b): rng.integers(0, 256, (b, s, s, 3), dtype=np.uint8) for s in sizes for b in batches}
    samples: dict[tuple[str, int], list[float]] = {}
    for r in range(args.rounds):
        for v in variants:
            for b in batches:
                rate = images_per_second(v.embedder, pixels[(v.embedder.input_size, b)], args.seconds)
                samples.setdefault((v.label, b), []).append(rate)
                print(f"  round {r + 1} {v.label} batch {b}: {rate:.1f} img/s", flush=True)

    grocery = None if args.no_recall else skip_without_grocery(run)
    if grocery is not None:
        recall_pass(variants, grocery, run)

    fp32_best = {}  # best img/s of the fp32 LiteRT (2 threads) model of each group of weights
    for v in variants:
        if (
            v.runtime == "LiteRT"
            and v.precision == "float32"
            and "1 thread" not in v.label
            and group(v) not in fp32_best
        ):
            fp32_best[group(v)] = max(statistics.median(samples[(v.label, b)]) for b in batches)
    rows = []
    for v in variants:
        row: dict[str, Any] = {
            "variant": v.label,
            "runtime": v.runtime,
            "precision": v.precision,
            "weights": v.weights,
            "file MB": round(v.file_bytes / 1e6, 2) if v.file_bytes else None,
        }
        for b in batches:
            row[f"img/s b{b}"] = statistics.median(samples[(v.label, b)])
        best = max(row[f"img/s b{b}"] for b in batches)
        row["best img/s"] = best  # the best batch size's median round
        row["fastest round img/s"] = max(max(samples[(v.label, b)]) for b in batches)
        if v.macs:
            row["GFLOP/s"] = best * 2 * v.macs / 1e9
            # against the peak measured with the same thread count
            row["% of matmul peak"] = (
                100.0 * row["GFLOP/s"] / (peak[0]["best_gflops"] if "1 thread" in v.label else peak2)
            )
        if group(v) in fp32_best:
            row["x LiteRT fp32 same weights"] = best / fp32_best[group(v)]
        row["recall@1 val"] = v.recall1
        row["recall@1 held-out SKUs"] = v.recall1_held
        row["cos to fp32 LiteRT"] = v.cosine_to_fp32
        row["rounds"] = {str(b): [round(x, 2) for x in samples[(v.label, b)]] for b in batches}
        rows.append(row)
    run.data["rows"] = rows
    run.data["peak_gflops_2_threads"] = peak2
    run.data["target"] = {"embedding_img_s": 250}
    columns = [
        "variant",
        "precision",
        "file MB",
        *[f"img/s b{b}" for b in batches],
        "best img/s",
        "fastest round img/s",
        "GFLOP/s",
        "% of matmul peak",
        "x LiteRT fp32 same weights",
        "recall@1 val",
        "recall@1 held-out SKUs",
        "cos to fp32 LiteRT",
    ]
    print()
    print(table(rows, columns))
    print(f"\nMACs per image (counted from the Keras layers): {run.data['macs']}")
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
