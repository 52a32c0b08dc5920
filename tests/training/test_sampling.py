"""P×K sampling and the tf.data pipeline (synthetic labels and images)."""

from __future__ import annotations

import numpy as np
import pytest

from training.augment import AugmentConfig
from training.sampling import PKSampler, feature_batches, image_dataset

LABELS = np.array([0] * 10 + [1] * 3 + [2] * 6 + [3] * 2 + [4] * 8 + [5])  # label 5: a single photo


def test_batches_have_p_skus_of_k_photos():
    sampler = PKSampler(LABELS, p=3, k=4, seed=1, steps_per_epoch=20)
    batches = sampler.epoch_batches(0)
    assert batches.shape == (20, 12)
    for batch in batches:
        labels = LABELS[batch].reshape(3, 4)
        assert all(len(set(row)) == 1 for row in labels)  # K photos of one SKU per group
        assert len(set(labels[:, 0])) == 3  # P distinct SKUs
        assert 5 not in labels  # a single-photo SKU has no positive: dropped


def test_small_skus_sampled_with_replacement_large_without():
    sampler = PKSampler(LABELS, p=2, k=4, seed=2, steps_per_epoch=50)
    for batch in sampler.epoch_batches(3):
        for group in batch.reshape(2, 4):
            label = LABELS[group[0]]
            if np.sum(LABELS == label) >= 4:
                assert len(set(group)) == 4


def test_every_sku_is_visited_and_deterministic():
    sampler = PKSampler(LABELS, p=2, k=2, seed=3, steps_per_epoch=5)
    seen = set(LABELS[sampler.epoch_batches(0)].ravel())
    assert seen == {0, 1, 2, 3, 4}
    assert np.array_equal(sampler.epoch_batches(7), PKSampler(LABELS, 2, 2, seed=3, steps_per_epoch=5).epoch_batches(7))
    assert not np.array_equal(sampler.epoch_batches(7), sampler.epoch_batches(8))


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="p=9"):
        PKSampler(LABELS, p=9, k=2)
    with pytest.raises(ValueError, match="k=1"):
        PKSampler(LABELS, p=2, k=1)


def test_feature_batches_pick_views():
    features = np.random.default_rng(0).normal(size=(len(LABELS), 3, 5)).astype(np.float32)
    sampler = PKSampler(LABELS, p=2, k=3, seed=0, steps_per_epoch=4)
    batches = list(feature_batches(features, LABELS, sampler, epoch=0))
    assert len(batches) == 4
    x, y = batches[0]
    assert x.shape == (6, 5) and y.dtype == np.int32
    again = list(feature_batches(features, LABELS, sampler, epoch=0))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))


def test_image_dataset_shapes_and_determinism():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(len(LABELS), 32, 32, 3), dtype=np.uint8)
    sampler = PKSampler(LABELS, p=2, k=2, seed=0, steps_per_epoch=3)
    runs = [
        [(x.numpy(), y.numpy()) for x, y in image_dataset(pixels, LABELS, sampler, 1, AugmentConfig(), seed=5)]
        for _ in range(2)
    ]
    assert len(runs[0]) == 3
    x, y = runs[0][0]
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.uint8 and y.shape == (4,)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(*runs))
    plain = next(iter(image_dataset(pixels, LABELS, sampler, 1, None, seed=5)))
    assert np.array_equal(plain[0].numpy(), pixels[sampler.epoch_batches(1)[0]])


def test_paired_catalogue_photo_takes_one_place_and_is_never_drawn_otherwise():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 1])  # the last two are catalogue photos of 0 and 1
    sampler = PKSampler(labels, p=2, k=2, seed=0, steps_per_epoch=200, paired={0: 9, 1: 10}, paired_p=0.5)
    batches = sampler.epoch_batches(0)
    for batch in batches:
        for group in batch.reshape(2, 2):
            assert labels[group[0]] == labels[group[1]]
            assert 9 not in group[1:] and 10 not in group[1:]  # only ever in the first place
    share = np.isin(batches, [9, 10]).sum() / (batches.size / 2 * 2 / 3)
    assert 0.3 < share < 0.7  # about paired_p of the groups of SKUs 0 and 1
    plain = PKSampler(labels[:9], p=2, k=2, seed=0, steps_per_epoch=5)
    assert not np.isin(plain.epoch_batches(0), [9, 10]).any()


def test_group_one_is_the_ungrouped_sampler():
    neighbours = {0: [1], 1: [0], 2: [4], 3: [2], 4: [2]}
    plain = PKSampler(LABELS, p=3, k=2, seed=4, steps_per_epoch=30)
    one = PKSampler(LABELS, p=3, k=2, seed=4, steps_per_epoch=30, neighbours=neighbours, group=1)
    assert np.array_equal(plain.epoch_batches(2), one.epoch_batches(2))


def test_groups_bring_each_drawn_label_with_its_nearest_labels():
    # 0↔1 and 2↔4 are look-alike pairs; label 3's neighbour 5 has a single photo (dropped), so 3 comes alone
    neighbours = {0: [1, 2], 1: [0, 2], 2: [4, 0], 3: [5, 0], 4: [2, 1]}
    sampler = PKSampler(LABELS, p=4, k=2, seed=5, steps_per_epoch=40, neighbours=neighbours, group=2)
    for batch in sampler.epoch_batches(0):
        order = list(dict.fromkeys(LABELS[batch].tolist()))  # labels in the order they entered the batch
        assert len(order) == 4  # still p distinct SKUs
        pairs = [tuple(sorted(order[i : i + 2])) for i in range(0, 4, 2)]
        # every pair is a seed with its nearest label not yet in the batch; 3 has none left but 0
        assert all(pair in {(0, 1), (2, 4), (0, 3), (1, 2), (0, 2), (1, 4)} or 3 in pair for pair in pairs), order
    together = [batch for batch in sampler.epoch_batches(1) if {0, 1} <= set(LABELS[batch])]
    plain = PKSampler(LABELS, p=4, k=2, seed=5, steps_per_epoch=40).epoch_batches(1)
    assert len(together) > sum({0, 1} <= set(LABELS[b]) for b in plain)  # look-alikes meet more often


def test_group_arguments_are_checked():
    with pytest.raises(ValueError, match="group must be in"):
        PKSampler(LABELS, p=2, k=2, neighbours={}, group=3)
    with pytest.raises(ValueError, match="needs the labels' neighbours"):
        PKSampler(LABELS, p=3, k=2, group=2)
