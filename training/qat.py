"""Quantisation-aware fine-tuning: a trained float model taught to keep its embeddings when its trunk
runs as int8 (``skulens export --precision int8_float_head`` / ``int8``).

Self-distillation rather than the recipe's own losses: the student is the model with int8 simulated in
its trunk (``training.int8_simulation``), the teacher the same model in float, frozen; the loss is the
cosine distance between their embeddings of the same augmented training photos. It needs no labels
and no classifier, and it asks for exactly what the precision rule asks: int8 answers as float32 does.
Activation ranges are calibrated once, on the representative photos the export calibrates on.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from training.config import TrainConfig
from training.int8_simulation import record_ranges, simulate_int8

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QatConfig:
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 1e-5
    seed: int = 0


def cosine_distance(student: np.ndarray, teacher: np.ndarray) -> float:
    """Mean ``1 - cos`` between rows of two arrays of unit vectors."""
    return float(np.mean(1.0 - np.sum(np.asarray(student) * np.asarray(teacher), axis=1)))


def qat_finetune(
    model_path: Path, config: TrainConfig, root: Path, out: Path, qat: QatConfig = QatConfig()
) -> dict[str, float]:
    """Fine-tune ``model_path`` with int8 simulated; save it to ``out/model.keras`` (+ its training meta,
    ``qat`` recorded) and return the student-teacher cosine distance on the representative photos
    before and after."""
    import keras
    import tensorflow as tf

    from training.data import cached_pixels, list_image_folder
    from training.features import augmented_copies, embed_pixels, forget_inference
    from training.fold_export import representative_pixels
    from training.train import backbone_network, load_trained_model

    keras.utils.set_random_seed(qat.seed)
    teacher, student = load_trained_model(model_path), load_trained_model(model_path)
    representative = representative_pixels(config, root)
    reference = embed_pixels(teacher, representative)
    network = backbone_network(student)
    undo = simulate_int8(network, record_ranges(network, student, representative))
    forget_inference(student)
    before = cosine_distance(embed_pixels(student, representative), reference)
    logger.info("int8 simulated: cosine distance to float %.5f on %d photos", before, len(representative))

    train = list_image_folder(root / "train", exclude=config.held_out)
    pixels = cached_pixels(train, config.input_size, config.cache_dir)
    optimizer = keras.optimizers.Adam(qat.learning_rate)
    variables = student.trainable_variables

    @tf.function
    def step(x: tf.Tensor) -> tf.Tensor:
        target = teacher(x, training=False)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(1.0 - tf.reduce_sum(student(x, training=False) * target, axis=1))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rng = np.random.default_rng(qat.seed)
    for i in range(qat.steps):
        chosen = np.sort(rng.choice(len(pixels), qat.batch_size, replace=False))
        batch = augmented_copies(np.asarray(pixels[chosen]), qat.seed, i, config.augment)
        loss = float(step(tf.constant(batch, dtype=tf.float32)))
        if i % 25 == 0 or i == qat.steps - 1:
            logger.info("qat step %d/%d: distillation loss %.5f", i + 1, qat.steps, loss)
    after = cosine_distance(embed_pixels(student, representative), reference)
    undo()
    forget_inference(student)
    float_drift = cosine_distance(embed_pixels(student, representative), reference)
    logger.info("after: int8 simulated %.5f, float %.5f (cosine distance to the teacher)", after, float_drift)

    out.mkdir(parents=True, exist_ok=True)
    student.save(out / "model.keras")
    meta = json.loads((model_path.parent / "training_meta.json").read_text())
    figures = {"simulated_before": before, "simulated_after": after, "float_after": float_drift}
    meta["qat"] = {**asdict(qat), "from": str(model_path), **figures}
    (out / "training_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return figures


def main(argv: list[str] | None = None) -> None:
    """``python -m training.qat --from runs/folds/A --out runs/folds/A_qat --config C --folds 0,1``:
    each fold's trained model fine-tuned with int8 simulated, laid out as a fold run so that
    ``skulens folds --out runs/folds/A_qat --precision int8_float_head`` measures it."""
    from dataclasses import replace

    from training.data import grocery_dir
    from training.folds import fold_splits

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--from", dest="source", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--folds", default="0,1,2,3")
    parser.add_argument("--steps", type=int, default=QatConfig.steps)
    parser.add_argument("--learning-rate", type=float, default=QatConfig.learning_rate)
    parser.add_argument("--seed", type=int, help="QAT's own batches and augmentation (default: the config's seed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = TrainConfig.load(args.config)
    root = Path(config.data_dir) if config.data_dir else grocery_dir()
    splits = fold_splits(root)
    qat = QatConfig(
        steps=args.steps, learning_rate=args.learning_rate, seed=config.seed if args.seed is None else args.seed
    )
    for f in [int(x) for x in args.folds.split(",")]:
        target = args.out / f"fold{f}" / "finetune"
        if (target / "model.keras").is_file():
            logger.info("fold %d: %s exists, kept", f, target)
            continue
        figures = qat_finetune(
            args.source / f"fold{f}" / "finetune" / "model.keras",
            replace(config, held_out=splits[f]),
            root,
            target,
            qat,
        )
        logger.info("fold %d: %s", f, json.dumps(figures))
    shutil.copy(args.config, args.out / "config.json")


if __name__ == "__main__":
    main()
