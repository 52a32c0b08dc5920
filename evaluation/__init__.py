"""Measuring a model: the open-set metrics, threshold calibration, the val-photo evaluation and its
report, and the ``evaluate`` / ``calibrate`` commands. Runs on the serve-only install (no
TensorFlow): it embeds through ``embedder.runtime``. Training builds on it (the fold protocol), never
the other way round."""
