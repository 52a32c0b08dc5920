"""Serving-time embedders. ``LiteRTEmbedder`` needs only ``ai-edge-litert`` (no TensorFlow)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np

from embedder.artifact import ModelArtifact


class Embedder(ABC):
    """uint8 pixels ``(n, size, size, 3)`` → float32 unit vectors ``(n, dim)``."""

    version: str
    embedding_dim: int
    input_size: int

    @abstractmethod
    def embed(self, pixels: np.ndarray) -> np.ndarray: ...

    def check_pixels(self, pixels: np.ndarray) -> np.ndarray:
        expected = (self.input_size, self.input_size, 3)
        if pixels.ndim != 4 or pixels.shape[1:] != expected:
            raise ValueError(f"expected pixels of shape (n, {expected[0]}, {expected[1]}, 3), got {pixels.shape}")
        return np.ascontiguousarray(pixels, dtype=np.uint8)


class LiteRTEmbedder(Embedder):
    """LiteRT interpreter (XNNPACK on CPU). One interpreter per recent batch size.

    Resizing an interpreter's input re-plans its memory, so the interpreters of
    the few most recent batch sizes are kept; calls are serialised by a lock
    (an interpreter is not thread-safe).
    """

    def __init__(self, artifact: ModelArtifact, num_threads: int = 2, max_cached_sizes: int = 4):
        self.artifact = artifact
        self.version = artifact.version
        self.embedding_dim = artifact.embedding_dim
        self.input_size = artifact.input_size
        self.num_threads = num_threads
        self._model_bytes = artifact.tflite_path.read_bytes()
        self._interpreters: OrderedDict[int, object] = OrderedDict()
        self._max_cached = max_cached_sizes
        self._lock = threading.Lock()
        self._interpreter(1)  # fail at start-up, not on the first request

    def _interpreter(self, batch: int):
        interpreter = self._interpreters.get(batch)
        if interpreter is not None:
            self._interpreters.move_to_end(batch)
            return interpreter
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=self._model_bytes, num_threads=self.num_threads)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, [batch, self.input_size, self.input_size, 3])
        interpreter.allocate_tensors()
        self._interpreters[batch] = interpreter
        if len(self._interpreters) > self._max_cached:
            self._interpreters.popitem(last=False)
        return interpreter

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        pixels = self.check_pixels(pixels)
        if len(pixels) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        with self._lock:
            interpreter = self._interpreter(len(pixels))
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
            interpreter.invoke()
            out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        return np.array(out, dtype=np.float32, copy=True)


class KerasEmbedder(Embedder):
    """A Keras model as an embedder (training, evaluation, export parity). Needs TensorFlow."""

    def __init__(self, model, version: str = "keras", batch_size: int = 32):
        self.model = model
        self.version = version
        self.embedding_dim = int(model.output_shape[-1])
        self.input_size = int(model.input_shape[1])
        self.batch_size = batch_size

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        pixels = self.check_pixels(pixels)
        if len(pixels) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        out = self.model.predict(pixels.astype(np.float32), batch_size=self.batch_size, verbose=0)
        return np.asarray(out, dtype=np.float32)


def load_embedder(artifact: ModelArtifact, num_threads: int = 2) -> LiteRTEmbedder:
    return LiteRTEmbedder(artifact, num_threads=num_threads)
