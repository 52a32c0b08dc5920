"""Image → unit-length embedding vector: preprocessing, model definition, export and runtimes."""

from embedder.artifact import ModelArtifact, load_artifact
from embedder.preprocess import ImageError, ImageTooLarge, UnsupportedImage, load_image

__all__ = ["ImageError", "ImageTooLarge", "ModelArtifact", "UnsupportedImage", "load_artifact", "load_image"]
