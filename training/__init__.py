"""Training, evaluation, calibration and export of the embedder (needs the ``train`` extra)."""
