"""``int8_float_head``: the convolutions int8, GeM pooling and the head float32 (a real, tiny conversion)."""

import numpy as np
import pytest

from embedder.mixed_precision import float_tail

SIZE = 32


def op(name, inputs, outputs):
    return {"op_name": name, "inputs": inputs, "outputs": outputs}


def test_tail_is_what_follows_the_last_convolution():
    ops = [
        op("QUANTIZE", [0], [1]),
        op("CONV_2D", [1, 20], [2]),
        op("DEPTHWISE_CONV_2D", [2, 21], [3]),
        op("CONV_2D", [3, 22], [4]),
        op("MAXIMUM", [4, 23], [5]),
        op("POW", [5, 24], [6]),
        op("MEAN", [6, 25], [7]),
        op("SHAPE", [1], [30]),  # after it in order but not fed by it: not part of the tail
        op("FULLY_CONNECTED", [7, 26, 27], [8]),
        op("MUL", [8, 30], [9]),
    ]
    assert [o["op_name"] for o in float_tail(ops)] == ["MAXIMUM", "POW", "MEAN", "FULLY_CONNECTED", "MUL"]


def test_a_pooling_branch_taken_off_before_the_last_convolution_is_in_the_tail():
    """Two-scale GeM: the stride-16 map feeds the next convolution and its own GeM; only the GeM is tail."""
    ops = [
        op("QUANTIZE", [0], [1]),
        op("CONV_2D", [1, 20], [2]),
        op("RELU", [2], [3]),  # feeds the last convolution: int8, although a branch is taken from it
        op("POW", [3, 24], [4]),
        op("MEAN", [4, 25], [5]),
        op("CONV_2D", [3, 22], [6]),
        op("ADD", [6, 6], [7]),
        op("CONV_2D", [7, 23], [8]),
        op("POW", [8, 24], [9]),
        op("MEAN", [9, 25], [10]),
        op("CONCATENATION", [10, 5], [11]),
        op("FULLY_CONNECTED", [11, 26], [12]),
    ]
    tail = float_tail(ops)
    assert [o["op_name"] for o in tail] == ["POW", "MEAN", "POW", "MEAN", "CONCATENATION", "FULLY_CONNECTED"]
    assert [o["outputs"] for o in tail[:2]] == [[4], [5]]  # the branch's GeM, not the ADD between convolutions


def test_no_convolution_or_no_tail_is_refused_with_what_was_found():
    with pytest.raises(ValueError, match=r"no convolution .* 2 ops: \['FULLY_CONNECTED', 'MUL'\]"):
        float_tail([op("FULLY_CONNECTED", [0], [1]), op("MUL", [1], [2])])
    with pytest.raises(ValueError, match="nothing follows the last convolution \\(op 1 of 2\\)"):
        float_tail([op("QUANTIZE", [0], [1]), op("CONV_2D", [1], [2])])


@pytest.fixture(scope="module")
def gem_model():
    """Convolutions → GeM → Dense → BN neck → L2 norm, the shipped recipe's shape in miniature."""
    keras = pytest.importorskip("keras")
    from embedder.pooling import GeMPooling

    keras.utils.set_random_seed(0)
    pixels = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(pixels)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, activation="relu")(x)
    x = keras.layers.Conv2D(32, 1, activation="relu")(x)
    x = GeMPooling(p=3.0, name="gem_pooling")(x)
    x = keras.layers.Dense(16, name="projection")(x)
    x = keras.layers.BatchNormalization(center=False, name="neck")(x)
    return keras.Model(pixels, keras.layers.UnitNormalization(name="l2_normalize")(x))


def embed(model_bytes: bytes, pixels: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, pixels.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, pixels)
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def test_convolutions_int8_and_gem_and_head_float32_close_to_keras(gem_model):
    from ai_edge_litert.interpreter import Interpreter

    from embedder.export import to_tflite
    from embedder.mixed_precision import check_float_tail

    rng = np.random.default_rng(0)
    representative = rng.integers(0, 256, (32, SIZE, SIZE, 3), dtype=np.uint8)
    pixels = rng.integers(0, 256, (16, SIZE, SIZE, 3), dtype=np.uint8)
    mixed = to_tflite(gem_model, SIZE, "int8_float_head", representative)

    interpreter = Interpreter(model_content=mixed)
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convs = [o for o in interpreter._get_ops_details() if o["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == 3 and all(tensors[o["outputs"][0]]["dtype"] == np.int8 for o in convs)
    tail = check_float_tail(mixed)  # raises if an op after the last convolution computes in int8
    assert {"POW", "MEAN", "FULLY_CONNECTED", "RSQRT"} <= set(tail)

    expected = gem_model.predict(pixels.astype(np.float32), verbose=0)
    got = embed(mixed, pixels)
    assert got.dtype == np.float32 and got.shape == (16, 16)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    mixed_error = np.abs(got - expected).max()
    assert mixed_error < 0.01, mixed_error
    # full-integer int8 of the same model strays further: the reason this precision exists
    int8_error = np.abs(embed(to_tflite(gem_model, SIZE, "int8", representative), pixels) - expected).max()
    assert mixed_error < int8_error / 4, (mixed_error, int8_error)


def test_two_scale_gem_keeps_both_poolings_float(gem_model):
    """A GeM taken off an earlier map (``pooling: gem_multiscale``) is float32 too, not only the last one's."""
    keras = pytest.importorskip("keras")
    from ai_edge_litert.interpreter import Interpreter

    from embedder.export import to_tflite
    from embedder.mixed_precision import check_float_tail
    from embedder.pooling import GeMPooling

    keras.utils.set_random_seed(1)
    pixels_in = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(pixels_in)
    mid = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    last = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(mid)
    x = keras.layers.Concatenate()([GeMPooling(name="gem_pooling")(last), GeMPooling(name="gem_pooling_mid")(mid)])
    model = keras.Model(pixels_in, keras.layers.UnitNormalization()(keras.layers.Dense(16)(x)))
    rng = np.random.default_rng(1)
    representative = rng.integers(0, 256, (32, SIZE, SIZE, 3), dtype=np.uint8)
    pixels = rng.integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8)
    mixed = to_tflite(model, SIZE, "int8_float_head", representative)
    tail = check_float_tail(mixed)  # raises if an op of either pooling or the head computes in int8
    assert tail.count("MEAN") == 2 and tail.count("POW") == 4, tail  # x ** p, then ** (1 / p), per pooling
    tensors = {t["index"]: t for t in Interpreter(model_content=mixed).get_tensor_details()}
    convs = [o for o in Interpreter(model_content=mixed)._get_ops_details() if o["op_name"] == "CONV_2D"]
    assert len(convs) == 2 and all(tensors[o["outputs"][0]]["dtype"] == np.int8 for o in convs)
    error = np.abs(embed(mixed, pixels) - model.predict(pixels.astype(np.float32), verbose=0)).max()
    assert error < 0.01, error


def test_without_representative_pixels_is_refused_naming_the_precision(gem_model):
    from embedder.export import to_tflite

    with pytest.raises(ValueError, match="int8_float_head export needs representative pixels"):
        to_tflite(gem_model, SIZE, "int8_float_head", np.zeros((0, SIZE, SIZE, 3), np.uint8))


def test_cli_offers_it_for_export_and_folds():
    from service.cli import build_parser

    args = build_parser().parse_args(["export", "m", "--out", "o", "--precision", "int8_float_head"])
    assert args.precision == "int8_float_head"
    args = build_parser().parse_args(["folds", "--config", "c.json", "--out", "o", "--precision", "int8_float_head"])
    assert args.precision == "int8_float_head"
