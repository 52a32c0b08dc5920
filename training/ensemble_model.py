"""Several trained embedders joined into one model that the service runs as it runs any other.

Each member sees the same pixels; their unit vectors are concatenated over ``sqrt(n_members)``, so the
joined output is a unit vector and its cosine similarity is the members' mean cosine similarity: exactly
what ``training.ensemble_folds`` measures on the fold protocol (``training.distill.teacher_embedding``).
The joined model is saved as a training run (``model.keras`` + ``training_meta.json``), so ``skulens export``
writes its LiteRT file, threshold and parity unchanged:

    python -m training.ensemble_model runs/v3/finetune runs/v2/finetune --out runs/ensemble
    skulens export runs/ensemble/finetune --out MODEL --calibration-from-folds runs/folds/ensemble
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

SEPARATOR = "+"


def join_embedders(members: Sequence[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model ``pixels -> (batch, sum of the members' dims)``, unit length, whose inner products are the
    members' mean cosine similarity. The members must take the same input shape."""
    import keras

    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    shapes = [tuple(m.input_shape[1:]) for m in members]
    if len(set(shapes)) != 1:
        raise ValueError(f"the members take different inputs: {shapes}; export or train them at one size")
    pixels = keras.Input(shapes[0], name="pixels")
    outputs = []
    for i, member in enumerate(members):
        # a uniquely named wrapper (sharing the member's layers), so the caller's models keep their names
        wrapped = keras.Model(member.input, member.output, name=f"member_{i}")
        outputs.append(keras.layers.UnitNormalization(name=f"member_{i}_unit")(wrapped(pixels)))
    joined = keras.layers.Concatenate(name="members")(outputs)
    scaled = keras.layers.Rescaling(1.0 / math.sqrt(len(members)), name="over_sqrt_n")(joined)
    return keras.Model(pixels, scaled, name=name)


REQUIRED_META = ("backbone", "input_size", "embedding_dim", "weights_origin")


def ensemble_meta(member_metas: Sequence[dict[str, Any]], member_paths: Sequence[str]) -> dict[str, Any]:
    """The joined model's ``training_meta.json``: its never-trained SKUs are those no member trained on."""
    for path, meta in zip(member_paths, member_metas, strict=True):
        missing = [key for key in REQUIRED_META if key not in meta]
        if missing:
            raise ValueError(f"the training_meta.json of {path!r} lacks {missing}: is it a skulens training run?")
    sizes = {m["input_size"] for m in member_metas}
    if len(sizes) != 1:
        raise ValueError(f"the members were trained at different sizes: {sorted(sizes)}")
    held_out = set.intersection(*(set(m.get("held_out_skus") or ()) for m in member_metas))
    return {
        "backbone": SEPARATOR.join(m["backbone"] for m in member_metas),
        "input_size": sizes.pop(),
        "embedding_dim": sum(int(m["embedding_dim"]) for m in member_metas),
        "weights_origin": "; ".join(m["weights_origin"] for m in member_metas),
        "trained": all(m.get("trained", True) for m in member_metas),
        "stage": "ensemble",
        "val_recall_at_1": None,
        "held_out_skus": sorted(held_out),
        "members": [
            {
                "path": path,
                "backbone": m["backbone"],
                "embedding_dim": m["embedding_dim"],
                "val_recall_at_1": m.get("val_recall_at_1"),
            }
            for path, m in zip(member_paths, member_metas, strict=True)
        ],
    }


def write_ensemble_run(member_dirs: Sequence[Path], out: Path) -> Path:
    """``out/finetune/model.keras`` + ``training_meta.json`` for the members' trained models (run folders
    holding ``model.keras``, e.g. ``RUN/finetune``)."""
    from training.train import META_FILE, load_trained_model

    dirs = [Path(d).parent if Path(d).suffix == ".keras" else Path(d) for d in member_dirs]
    for d in dirs:
        if not (d / "model.keras").is_file() or not (d / META_FILE).is_file():
            raise FileNotFoundError(
                f"no model.keras and {META_FILE} in {str(d)!r}: pass a trained run's finetune folder"
            )
    metas = [json.loads((d / META_FILE).read_text()) for d in dirs]
    meta = ensemble_meta(metas, [str(d) for d in dirs])
    model = join_embedders([load_trained_model(d / "model.keras") for d in dirs])
    if model.output_shape[-1] != meta["embedding_dim"]:
        raise ValueError(
            f"the joined model gives {model.output_shape[-1]}-d vectors, its members' cards say {meta['embedding_dim']}"
        )
    folder = Path(out) / "finetune"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.keras"
    model.save(path)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    logger.info(
        "saved the %d-member ensemble (%s, %d-d) to %s", len(dirs), meta["backbone"], meta["embedding_dim"], path
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("members", nargs="+", type=Path, help="trained runs' finetune folders (model.keras inside)")
    parser.add_argument("--out", type=Path, required=True, help="run folder for the joined model (OUT/finetune)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        write_ensemble_run(args.members, args.out)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"ensemble_model: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
