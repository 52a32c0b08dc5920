"""The catalogue's shares: the splits the centre model is trained and measured on must not overlap."""

import numpy as np
import pytest

from counter.scenes import PRODUCT_SETS, Product, product_set

CATALOGUE = [Product(f"sku-{i:02d}", np.zeros((2, 2, 3), np.uint8)) for i in range(61)]


def skus(which: str) -> set[str]:
    return {p.sku for p in product_set(CATALOGUE, which)}


def test_even_and_odd_are_the_halves_by_name_order() -> None:
    assert [p.sku for p in product_set(CATALOGUE, "even")] == [p.sku for p in CATALOGUE[0::2]]
    assert [p.sku for p in product_set(CATALOGUE, "odd")] == [p.sku for p in CATALOGUE[1::2]]
    assert skus("all") == {p.sku for p in CATALOGUE}


@pytest.mark.parametrize(("train", "test"), [("even", "odd"), ("even_odd_a", "odd_b"), ("odd_a", "odd_b")])
def test_training_and_measuring_shares_are_disjoint(train: str, test: str) -> None:
    assert skus(train) and skus(test)
    assert not skus(train) & skus(test)


def test_the_quarters_make_up_the_halves() -> None:
    assert skus("odd_a") | skus("odd_b") == skus("odd")
    assert skus("even_odd_a") == skus("even") | skus("odd_a")
    assert len(skus("odd_b")) == 15 and len(skus("even_odd_a")) == 46


def test_an_unknown_share_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"one of all, even, .*got 'thirds'"):
        product_set(CATALOGUE, "thirds")
    assert set(PRODUCT_SETS) >= {"all", "even", "odd"}
