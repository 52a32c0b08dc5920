"""Training configuration: defaults, JSON config files, and where backbone weights come from."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from embedder.backbones import POOLINGS, WEIGHTS_ENV, get_backbone
from embedder.model import DEFAULT_BACKBONE, DEFAULT_EMBEDDING_DIM, DEFAULT_INPUT_SIZE
from evaluation.data import HELD_OUT_SKUS
from training.augment import AugmentConfig


@dataclass(frozen=True)
class StageConfig:
    p: int = 16  # SKUs per batch
    k: int = 4  # photos per SKU
    epochs: int = 10
    steps_per_epoch: int | None = None  # None: about one pass over the photos
    learning_rate: float = 1e-4
    val_every: int = 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run. Field docs live in docs/model_card.md."""

    backbone: str = DEFAULT_BACKBONE
    weights: str | None = None  # imagenet | none | PATH; None: $SKULENS_BACKBONE_WEIGHTS, else imagenet
    input_size: int = DEFAULT_INPUT_SIZE
    embedding_dim: int = DEFAULT_EMBEDDING_DIM
    data_dir: str | None = None  # folder with train/ and val/; None: $SKULENS_GROCERY_DIR or ../shared/data/grocery
    held_out: tuple[str, ...] = HELD_OUT_SKUS
    seed: int = 0
    margin: float = 1.0  # used by the hard margin and by the "active triplet" metric
    soft_margin: bool = True
    distance: str = "l2"
    feature_views: int = 4  # augmented views per photo in the stage-1 cache (plus the clean one)
    cache_dir: str = "runs/cache"
    stage1: StageConfig = StageConfig(p=32, k=4, epochs=30, learning_rate=1e-3)
    stage2: StageConfig = StageConfig(p=16, k=4, epochs=6, learning_rate=1e-4)
    unfreeze_blocks: int = 2  # inverted-residual blocks fine-tuned (plus the final 1x1 conv); -1: every layer
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # "two_stage": head on cached features, then the top blocks, epochs chosen by val recall (the recipe up
    # to model 88203401daf362ef). "finetune": one stage, every layer from the start, warm-up then cosine
    # decay, a fixed number of epochs (no checkpoint chosen on val photos), optional EMA and BNNeck.
    schedule: str = "two_stage"
    finetune: StageConfig = StageConfig(p=16, k=4, epochs=15, learning_rate=3e-4)
    warmup_epochs: int = 2
    neck: bool = False  # BNNeck: triplet on the projection, softmax cross-entropy on its BatchNorm'd copy
    label_smoothing: float = 0.1
    ce_weight: float = 1.0
    # the neck's classifier: "linear" (a Dense layer's logits) or "cosine" (CosFace: normalised features and
    # class weights, logits = cosine_scale * (cos - cosine_margin on the true class))
    classifier: str = "linear"
    cosine_scale: float = 30.0
    cosine_margin: float = 0.25
    # "avg", "gem" (generalised mean with a learned exponent) or "gem_multiscale" (GeM of the last map and of the
    # stride-16 map, concatenated): embedder.backbones.build_backbone
    pooling: str = "avg"
    # "frozen": the backbone's BatchNorm layers keep their ImageNet statistics and scales (inference mode);
    # "train": they learn scale and shift and use batch statistics while fine-tuning; finetune schedule only
    batchnorm: str = "frozen"
    ema_momentum: float | None = None  # e.g. 0.99: the model saved is the moving average of the weights
    catalogue_p: float = 0.0  # chance that a SKU's K photos in a batch include its catalogue (studio) photo
    # > 1: the fine-tuning batches' SKUs come in groups of this size, a drawn SKU and its nearest SKUs by the
    # untrained network's class centroids (training.class_neighbours), so look-alikes meet in batch-hard mining
    lookalike_group: int = 1
    # < 1: the backbone's weights step at this share of the schedule's rate, the head's at the full rate
    # (training.scaled_adam), so fine-tuning moves the ImageNet features less; finetune schedule only
    backbone_lr_scale: float = 1.0
    # trained models (model.keras) whose mean cosine similarities the served embedding is pulled towards
    # (training.distill); "{fold}" in a path is the fold number in the fold protocol (each fold its own teacher)
    distill_from: tuple[str, ...] = ()
    distill_weight: float = 25.0
    # > 0: a centre loss (training.losses.centre_loss) at this weight on the triplet's feature, one centre per SKU
    # starting at zero and stepped towards its batch photos at rate centre_alpha (training.losses.centre_update);
    # finetune schedule with neck only
    centre_weight: float = 0.0
    centre_alpha: float = 0.5
    # > 0: this many blends a step of the batch's closest photo pairs of different SKUs (their last feature maps
    # mixed at weights spread over blend_range, then pooled), each a negative that every photo of its two SKUs must
    # be farther from than its hardest positive, at blend_weight (training.blend_negatives); finetune, neck, GeM
    blend_negatives: int = 0
    blend_range: tuple[float, float] = (0.35, 0.65)
    blend_weight: float = 1.0

    def __post_init__(self) -> None:
        get_backbone(self.backbone)  # raises on an unknown name
        if self.schedule not in ("two_stage", "finetune"):
            raise ValueError(f"schedule {self.schedule!r} is not one of two_stage, finetune")
        if not 0.0 <= self.catalogue_p <= 1.0:
            raise ValueError(f"catalogue_p must be in [0, 1], got {self.catalogue_p!r}")
        if self.ema_momentum is not None and not 0.0 < self.ema_momentum < 1.0:
            raise ValueError(f"ema_momentum must be in (0, 1) or null, got {self.ema_momentum!r}")
        if self.classifier not in ("linear", "cosine"):
            raise ValueError(f"classifier {self.classifier!r} is not one of linear, cosine")
        if self.cosine_scale <= 0 or not 0.0 <= self.cosine_margin < 1.0:
            raise ValueError(
                f"cosine_scale must be > 0 and cosine_margin in [0, 1), got {self.cosine_scale!r} "
                f"and {self.cosine_margin!r}"
            )
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        if self.pooling != "avg" and self.schedule != "finetune":
            raise ValueError(
                f"pooling {self.pooling!r} needs schedule 'finetune' (the two-stage recipe caches average-pooled "
                f"features), got schedule {self.schedule!r}"
            )
        if self.batchnorm not in ("frozen", "train"):
            raise ValueError(f"batchnorm {self.batchnorm!r} is not one of frozen, train")
        if self.batchnorm == "train" and (self.schedule != "finetune" or self.unfreeze_blocks >= 0):
            raise ValueError(
                f"batchnorm 'train' needs schedule 'finetune' with unfreeze_blocks -1, got schedule "
                f"{self.schedule!r}, unfreeze_blocks {self.unfreeze_blocks!r}"
            )
        if not 1 <= self.lookalike_group <= self.finetune.p:
            raise ValueError(
                f"lookalike_group must be in [1, finetune.p={self.finetune.p}], got {self.lookalike_group!r}"
            )
        if self.lookalike_group > 1 and self.schedule != "finetune":
            raise ValueError(f"lookalike_group > 1 needs schedule 'finetune', got schedule {self.schedule!r}")
        if self.distill_from and (self.schedule != "finetune" or not self.neck):
            raise ValueError(
                f"distill_from needs schedule 'finetune' with neck true, got schedule {self.schedule!r}, "
                f"neck {self.neck!r}"
            )
        if not 0.0 < self.backbone_lr_scale <= 1.0:
            raise ValueError(f"backbone_lr_scale must be in (0, 1], got {self.backbone_lr_scale!r}")
        if self.backbone_lr_scale != 1.0 and self.schedule != "finetune":
            raise ValueError(f"backbone_lr_scale needs schedule 'finetune', got schedule {self.schedule!r}")
        if self.distill_weight < 0:
            raise ValueError(f"distill_weight must be >= 0, got {self.distill_weight!r}")
        if self.centre_weight < 0:
            raise ValueError(f"centre_weight must be >= 0, got {self.centre_weight!r}")
        if not 0.0 < self.centre_alpha <= 1.0:
            raise ValueError(f"centre_alpha must be in (0, 1], got {self.centre_alpha!r}")
        if self.centre_weight > 0 and (self.schedule != "finetune" or not self.neck):
            raise ValueError(
                f"centre_weight > 0 needs schedule 'finetune' with neck true, got schedule {self.schedule!r}, "
                f"neck {self.neck!r}"
            )
        if self.distance not in ("l2", "squared_l2", "cosine"):
            raise ValueError(f"distance {self.distance!r} is not one of l2, squared_l2, cosine")
        self._check_blend()

    def _check_blend(self) -> None:
        batch = self.finetune.p * self.finetune.k
        if not 0 <= self.blend_negatives <= batch:
            raise ValueError(
                f"blend_negatives must be in [0, finetune.p * finetune.k = {batch}], got {self.blend_negatives!r}"
            )
        if len(self.blend_range) != 2 or not 0.0 < self.blend_range[0] <= self.blend_range[1] < 1.0:
            raise ValueError(f"blend_range must be (low, high) with 0 < low <= high < 1, got {self.blend_range!r}")
        if self.blend_weight < 0:
            raise ValueError(f"blend_weight must be >= 0, got {self.blend_weight!r}")
        if self.blend_negatives > 0 and self.finetune.p < 2:
            raise ValueError(
                f"blend_negatives > 0 needs batches of at least 2 SKUs, got finetune.p {self.finetune.p!r}"
            )
        if self.blend_negatives > 0 and (
            self.schedule != "finetune" or not self.neck or self.pooling != "gem" or self.batchnorm != "frozen"
        ):
            raise ValueError(
                f"blend_negatives > 0 needs schedule 'finetune', neck true, pooling 'gem' and batchnorm 'frozen', got "
                f"schedule {self.schedule!r}, neck {self.neck!r}, pooling {self.pooling!r}, batchnorm {self.batchnorm!r}"
            )

    def resolved_weights(self) -> str | None:
        """The weights actually used: the config's, else ``$SKULENS_BACKBONE_WEIGHTS``, else ImageNet."""
        weights = self.weights or os.environ.get(WEIGHTS_ENV) or "imagenet"
        return None if weights == "none" else weights

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["held_out"] = list(self.held_out)
        out["distill_from"] = list(self.distill_from)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}; known: {sorted(known)}")
        values = dict(values)
        for stage in ("stage1", "stage2", "finetune"):
            if isinstance(values.get(stage), dict):
                values[stage] = replace(getattr(cls(), stage), **values[stage])
        if isinstance(values.get("augment"), dict):
            values["augment"] = AugmentConfig.from_dict(values["augment"])
        for name in ("held_out", "distill_from", "blend_range"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainConfig:
        try:
            values = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"config file {str(path)!r} is not valid JSON: {exc}") from exc
        return cls.from_dict(values)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
