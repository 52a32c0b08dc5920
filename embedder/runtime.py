"""Serving-time embedders. ``LiteRTEmbedder`` needs only ``ai-edge-litert`` (no TensorFlow)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from embedder.artifact import ModelArtifact

if TYPE_CHECKING:
    import keras
    from ai_edge_litert.interpreter import Interpreter


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
    """LiteRT interpreter (XNNPACK on CPU), one per power-of-two batch size.

    Resizing an interpreter's input re-plans its memory (slow), and micro-batches
    come in every size. So a batch is split into power-of-two chunks (13 = 8 + 4 + 1,
    no padding wasted) and one interpreter is kept for each chunk size: at most
    ``log2(max_chunk) + 1`` of them, never re-planned. Calls are serialised by a
    lock (an interpreter is not thread-safe).
    """

    def __init__(self, artifact: ModelArtifact, num_threads: int = 2, max_chunk: int = 32):
        self.artifact = artifact
        self.version = artifact.version
        self.embedding_dim = artifact.embedding_dim
        self.input_size = artifact.input_size
        self.num_threads = num_threads
        self._model_bytes = artifact.tflite_path.read_bytes()
        if max_chunk < 1 or max_chunk & (max_chunk - 1):
            raise ValueError(f"max_chunk must be a power of two, got {max_chunk}")
        self.max_chunk = max_chunk
        self._interpreters: dict[int, tuple[Interpreter, int, int]] = {}  # size → (interpreter, input, output)
        self._lock = threading.Lock()
        self._interpreter(1)  # fail at start-up, not on the first request

    def _interpreter(self, batch: int) -> tuple[Interpreter, int, int]:
        cached = self._interpreters.get(batch)
        if cached is not None:
            return cached
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=self._model_bytes, num_threads=self.num_threads)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, [batch, self.input_size, self.input_size, 3])
        interpreter.allocate_tensors()
        cached = (interpreter, index, interpreter.get_output_details()[0]["index"])
        self._interpreters[batch] = cached
        return cached

    def chunk_sizes(self, n: int) -> list[int]:
        """Power-of-two chunks, largest first, each at most ``max_chunk``: 13 → [8, 4, 1]."""
        sizes = [self.max_chunk] * (n // self.max_chunk)
        rest = n % self.max_chunk
        return sizes + [1 << bit for bit in range(rest.bit_length() - 1, -1, -1) if rest >> bit & 1]

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        pixels = self.check_pixels(pixels)
        out = np.empty((len(pixels), self.embedding_dim), dtype=np.float32)
        start = 0
        with self._lock:
            for size in self.chunk_sizes(len(pixels)):
                interpreter, input_index, output_index = self._interpreter(size)
                interpreter.set_tensor(input_index, pixels[start : start + size])
                interpreter.invoke()
                out[start : start + size] = interpreter.get_tensor(output_index)
                start += size
        return out


class KerasEmbedder(Embedder):
    """A Keras model as an embedder (training, evaluation, export parity). Needs TensorFlow."""

    def __init__(self, model: keras.Model, version: str = "keras", batch_size: int = 32):
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
