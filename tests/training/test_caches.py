"""Decoded-pixel caches shared by runs that fill them at once (a benchmark beside a training, two benchmarks)."""

import os
import threading

import numpy as np
from PIL import Image

from training.data import cached_pixels, list_image_folder


def make_folder(root, skus=("a", "b"), per_sku=3):
    for k, sku in enumerate(skus):
        (root / sku).mkdir(parents=True)
        for i in range(per_sku):
            Image.new("RGB", (40, 30), (40 * k, 20 * i, 90)).save(root / sku / f"{i}.jpg")
    return list_image_folder(root)


def test_two_runs_filling_one_pixel_cache_at_once_both_succeed_and_leave_one_whole_file(tmp_path, monkeypatch):
    """Both have written their file before either renames it (the barrier), as two processes started together
    can; with one shared temporary name the second rename found nothing to rename (FileNotFoundError, seen
    2026-11-28 with two benchmarks)."""
    folder = make_folder(tmp_path / "photos")
    barrier = threading.Barrier(2)
    rename = os.replace

    def rename_together(src, dst):
        barrier.wait(timeout=10)
        rename(src, dst)

    monkeypatch.setattr(os, "replace", rename_together)
    results, errors = [], []

    def run():
        try:
            results.append(np.asarray(cached_pixels(folder, 32, tmp_path / "cache")))
        except Exception as error:  # noqa: BLE001 - the test reports it
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 2 and np.array_equal(results[0], results[1])
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"pixels-{folder.fingerprint()}-32.npy"]
    monkeypatch.setattr(os, "replace", rename)
    again = cached_pixels(folder, 32, tmp_path / "cache")
    assert isinstance(again, np.memmap) and np.array_equal(np.asarray(again), results[0])
