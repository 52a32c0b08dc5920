"""SKU and lane ids match their pattern in full: '$' in re.match also matches before a final newline."""

import pytest

from gallery.lanes import InvalidLane, validate_lane
from gallery.types import InvalidSku, validate_sku


@pytest.mark.parametrize("bad", ["milk\n", "milk\r\n", "\nmilk", "milk\n\n"])
def test_an_id_with_a_newline_is_refused(bad):
    with pytest.raises(InvalidSku, match="invalid SKU id"):
        validate_sku(bad)
    with pytest.raises(InvalidLane, match="invalid lane id"):
        validate_lane(bad)


def test_good_ids_pass():
    assert validate_sku("arla-milk-1l") == "arla-milk-1l" and validate_lane("lane-1") == "lane-1"
