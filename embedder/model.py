"""The embedding network: backbone → global pooling (average, GeM or two-scale GeM) → Dense(256) → L2 norm.

Split in two so training can cache the frozen backbone's pooled features and
train the head on them (``build_head``), then join both (``build_embedding_model``).
Needs TensorFlow/Keras (the ``train`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedder.backbones import build_backbone, pooled_feature_dim

if TYPE_CHECKING:
    import keras

DEFAULT_BACKBONE = "mobilenet_v3_large"
DEFAULT_EMBEDDING_DIM = 256
DEFAULT_INPUT_SIZE = 224


def build_head(
    feature_dim: int, embedding_dim: int = DEFAULT_EMBEDDING_DIM, seed: int | None = None, neck: bool = False
) -> keras.Model:
    """Pooled features → unit-length embeddings.

    ``neck``: a BatchNormalization ("BNNeck", Luo et al. 2019) between the projection and the
    L2 norm; training puts the triplet loss before it and a softmax classifier after it, and
    serving uses the normalised post-BN vector (at inference the BN is a fixed affine map).
    """
    import keras

    features = keras.Input((feature_dim,), name="features")
    init = keras.initializers.GlorotUniform(seed=seed)
    x = keras.layers.Dense(embedding_dim, kernel_initializer=init, name="projection")(features)
    if neck:
        x = keras.layers.BatchNormalization(center=False, name="neck")(x)
    x = keras.layers.UnitNormalization(axis=-1, name="l2_normalize")(x)
    return keras.Model(features, x, name="head")


def build_embedding_model(
    backbone: str = DEFAULT_BACKBONE,
    weights: str | None = "imagenet",
    embedding_dim: int = DEFAULT_EMBEDDING_DIM,
    input_size: int = DEFAULT_INPUT_SIZE,
    head: keras.Model | None = None,
    seed: int | None = None,
    pooling: str = "avg",
    train_batchnorm: bool = False,
) -> keras.Model:
    """Full model: uint8-range RGB pixels (float) → float32 unit vectors of ``embedding_dim``."""
    import keras

    base = build_backbone(backbone, input_size, weights, pooling=pooling, train_batchnorm=train_batchnorm)
    if head is None:
        head = build_head(pooled_feature_dim(backbone, pooling), embedding_dim, seed=seed)
    pixels = keras.Input((input_size, input_size, 3), name="pixels")
    embeddings = head(base(pixels))
    return keras.Model(pixels, embeddings, name=f"skulens_{backbone}")


def pooling_of(model: keras.Model) -> str:
    """The pooling a built embedder uses, read from its backbone's layer names (``build_backbone``)."""
    names = {layer.name for layer in _backbone_of(model).layers}
    if "gem_pooling_mid" in names:
        return "gem_multiscale"
    return "gem" if "gem_pooling" in names else "avg"


def at_input_size(model: keras.Model, size: int) -> keras.Model:
    """``model`` (an embedder of ``build_embedding_model``) rebuilt for ``size`` × ``size`` pixels, same weights.

    Everything up to the global pooling is convolutional, so trained weights run at any size; serving a
    model above its training size shows products larger, as its random-resized-crop training saw them
    ("FixRes", Touvron et al. 2019). ``skulens folds --serve-size`` measures whether that helps.
    """
    import keras

    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise ValueError(f"input size must be an integer of at least 32 pixels, got {size!r}")
    trained = _backbone_of(model)
    heads = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer is not trained]
    if len(heads) != 1:
        raise ValueError(f"expected one head model in {model.name!r}, found {[x.name for x in model.layers]}")
    backbone = trained.name.removeprefix("backbone_")
    base = build_backbone(backbone, size, weights=None, pooling=pooling_of(model))
    base.set_weights(trained.get_weights())
    pixels = keras.Input((size, size, 3), name="pixels")
    return keras.Model(pixels, heads[0](base(pixels)), name=model.name)


def _backbone_of(model: keras.Model) -> keras.Model:
    found = [layer for layer in model.layers if layer.name.startswith("backbone_")]
    if len(found) != 1:
        raise ValueError(f"expected one backbone_* layer in model {model.name!r}, found {[x.name for x in found]}")
    layer: keras.Model = found[0]
    return layer
