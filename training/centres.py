"""Training the class-agnostic item-centre model of ``counter/centres.py`` on synthetic counter scenes.

Scenes come from ``counter.scenes`` (products cut out of catalogue photos, 1-8 on wood, laminate or a belt,
``touching_p`` of them with items touching), drawn from one half of the catalogue so that the other half
measures it (``bench/counter.py --segmenter learned``). The network: MobileNetV3Large-minimalistic's ImageNet
layers up to stride 16, frozen, whose features are computed once and cached (two cores), and a small head
(stride-16 features upsampled onto the stride-8 ones, two 3x3 convolutions) trained with CenterNet's
penalty-reduced focal loss (Zhou et al., "Objects as Points", 2019) on a Gaussian at each item's box centre.
Exported as float32 LiteRT, uint8 RGB in, the sigmoid heatmap out.

    python -m training.centres --out runs/centres [--scenes 2400] [--epochs 12] [--products even]
    python -m training.centres --out runs/centres --export counter/centre_model
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from counter.scenes import PRODUCT_SETS, Product, catalogue_products, product_set
from training.centre_scenes import scene_data
from training.centre_targets import centre_targets, flip_boxes

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = (
    "../shared/weights/mobilenet_v3_large_minimalistic_1.0_224_imagenet_notop_from_tfslim_uint8.weights.h5"
)
LAYERS = ("expanded_conv_5_add", "expanded_conv_11_add")  # MobileNetV3Large's last stride-8 and stride-16 blocks


@dataclass(frozen=True)
class CentreConfig:
    input_width: int = 512
    input_height: int = 384
    stride: int = 8
    scenes: int = 2400
    first_seed: int = 100_000  # clear of every benchmark range (0-199, 1000-1399, 10000, 20000-20199)
    touching_p: float = 0.6
    products: str = "even"  # the share of the catalogue it trains on (counter.scenes.PRODUCT_SETS)
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 2e-3
    width: int = 48  # the head's channels
    # share of the backbone's feature channels dropped in training (whole maps): without it the head fits the
    # training products' looks and counts unseen ones worse; 0.5 chosen on seeds 1000-1399 of the odd products
    dropout: float = 0.5
    weight_decay: float = 0.0  # AdamW's decoupled weight decay on the head (0.3 counted worse there)
    seed: int = 0
    weights: str = DEFAULT_WEIGHTS  # the backbone's ImageNet weights, or "none"
    threshold: float = 0.2  # written into centres.json: a peak this high is an item's centre (chosen on seeds
    window: int = 9  # ... 1000-1399 of the odd products); one higher within this many working-copy px is the same
    valley: float = 0.3  # ... and so is one whose ridge to a higher peak stays above this share of its height


def build_trunk(config: CentreConfig) -> keras.Model:
    """The frozen backbone: raw RGB 0..255 in, the stride-8 and stride-16 features out."""
    import keras

    weights = None if config.weights == "none" else config.weights
    base = keras.applications.MobileNetV3Large(
        input_shape=(config.input_height, config.input_width, 3),
        include_top=False,
        minimalistic=True,
        weights=weights,
        include_preprocessing=True,
    )
    return keras.Model(base.input, [base.get_layer(name).output for name in LAYERS], name="centre_trunk")


def build_head(config: CentreConfig, channels: tuple[int, int]) -> keras.Model:
    """Features in, the centre heatmap's logits out (stride 8)."""
    import keras
    from keras import layers

    h8, w8 = config.input_height // 8, config.input_width // 8
    fine = keras.Input((h8, w8, channels[0]))
    coarse = keras.Input(((h8 + 1) // 2, (w8 + 1) // 2, channels[1]))
    a, b = fine, coarse
    if config.dropout > 0:  # the head must not lean on a few channels that describe the training products
        a = layers.SpatialDropout2D(config.dropout, seed=config.seed)(a)
        b = layers.SpatialDropout2D(config.dropout, seed=config.seed + 1)(b)
    a = layers.Conv2D(config.width, 1, activation="relu")(a)
    b = layers.Conv2D(config.width, 1, activation="relu")(b)
    b = layers.UpSampling2D(2, interpolation="bilinear")(b)
    x = layers.Concatenate()([a, b])
    x = layers.Conv2D(config.width, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(config.width, 3, padding="same", activation="relu")(x)
    # RetinaNet's start: every cell at the prior (sigmoid 0.1, most cells are not a centre) whatever the features'
    # scale; a random last layer on the backbone's large activations made some starts diverge (runs/ seeds)
    logits = layers.Conv2D(
        1,
        1,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        bias_initializer=keras.initializers.Constant(-2.19),
    )(x)
    return keras.Model([fine, coarse], logits, name="centre_head")


def focal_loss(y: Any, logits: Any) -> Any:
    """CenterNet's penalty-reduced focal loss over a batch, per item centre (``focal_loss_numpy`` spelled out)."""
    from keras import ops

    p = ops.sigmoid(logits)
    centre = ops.cast(y >= 0.999, "float32")
    at_centres = centre * (1 - p) ** 2 * ops.softplus(-logits)  # -log p, computed stably
    elsewhere = (1 - centre) * (1 - y) ** 4 * p**2 * ops.softplus(logits)  # -log(1 - p)
    return (ops.sum(at_centres) + ops.sum(elsewhere)) / ops.maximum(ops.sum(centre), 1.0)


def features(trunk: keras.Model, photos: np.ndarray, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The trunk's two feature maps of ``photos``, float16 (they are cached)."""
    fine, coarse = [], []
    for start in range(0, len(photos), batch):
        a, b = trunk.predict(photos[start : start + batch].astype(np.float32), verbose=0)
        fine.append(a.astype(np.float16))
        coarse.append(b.astype(np.float16))
    return np.concatenate(fine), np.concatenate(coarse)


def train(config: CentreConfig, out: Path, products: list[Product], workers: int = 2) -> keras.Model:
    """Scenes → cached features (with each photo's mirror image) → the head, saved in ``out``."""
    import keras

    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    trunk = build_trunk(config)
    cache = out / "features.npz"
    started = time.time()
    if cache.exists():
        cached = np.load(cache, allow_pickle=False)
        fine, coarse, targets = cached["fine"], cached["coarse"], cached["targets"]
    else:
        photos, boxes = scene_data(product_set(products, config.products), config, workers)
        log.info("%d scenes made in %.0f s", len(photos), time.time() - started)
        fine, coarse = (
            np.concatenate(pair) for pair in zip(features(trunk, photos), features(trunk, photos[:, :, ::-1]))
        )
        mirrored = [flip_boxes(b, config.input_width) for b in boxes]
        targets = centre_targets(boxes + mirrored, config.input_height, config.input_width, config.stride)
        np.savez(cache, fine=fine, coarse=coarse, targets=targets)
        log.info("features of %d photos (and their mirror images) in %.0f s", len(photos), time.time() - started)
    head = build_head(config, (fine.shape[-1], coarse.shape[-1]))
    held = np.arange(len(targets)) % 10 == 0  # a tenth of the scenes watch the loss, nothing is chosen on them
    steps = config.epochs * max(1, int((~held).sum()) // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
    # Keras' Adam takes a decoupled weight decay itself (AdamW is Adam with one); None leaves it off
    optimizer = keras.optimizers.Adam(schedule, weight_decay=config.weight_decay or None)
    head.compile(optimizer=optimizer, loss=focal_loss)
    history = head.fit(
        [fine[~held], coarse[~held]],
        targets[~held],
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=([fine[held], coarse[held]], targets[held]),
        verbose=2,
    )
    head.save_weights(out / "head.weights.h5")
    trunk.save_weights(out / "trunk.weights.h5")  # the features' own weights (a random start is not rebuilt alike)
    summary = {"config": asdict(config), "loss": history.history, "seconds": round(time.time() - started)}
    (out / "training.json").write_text(json.dumps(summary, indent=1))
    return head


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="training folder (features cache, head weights)")
    parser.add_argument("--scenes", type=int, default=CentreConfig.scenes)
    parser.add_argument("--epochs", type=int, default=CentreConfig.epochs)
    parser.add_argument(
        "--products", default=CentreConfig.products, choices=list(PRODUCT_SETS), help="counter.scenes.PRODUCT_SETS"
    )
    parser.add_argument("--width", type=int, default=CentreConfig.width, help="the head's channels")
    parser.add_argument("--dropout", type=float, default=CentreConfig.dropout, help="feature-map dropout in training")
    parser.add_argument("--weight-decay", type=float, default=CentreConfig.weight_decay, help="AdamW weight decay")
    parser.add_argument("--seed", type=int, default=CentreConfig.seed, help="the head's initialisation and dropout")
    parser.add_argument("--weights", default=CentreConfig.weights, help="backbone ImageNet weights file, or none")
    parser.add_argument("--export", type=Path, help="export the trained model in --out to this folder instead")
    args = parser.parse_args(argv)
    if args.export:
        from training.centre_export import export

        log.info("exported to %s", export(args.out, args.export))
        return
    from training.data import grocery_dir

    config = CentreConfig(
        scenes=args.scenes,
        epochs=args.epochs,
        products=args.products,
        weights=args.weights,
        width=args.width,
        dropout=args.dropout,
        weight_decay=args.weight_decay,
        seed=args.seed,
    )
    train(config, args.out, catalogue_products(grocery_dir()))


if __name__ == "__main__":
    main()
