"""gallery.basket: lines by SKU, exact totals, nothing unknown or unpriced in the total."""

from gallery.basket import NO_PRICE, UNKNOWN, BasketItem, price_basket


def item(sku, price=None, known=True, score=0.9):
    return BasketItem(sku if known else None, sku.title() if known and sku else None, score, known, price)


def test_lines_group_by_sku_in_order_of_first_item_and_the_total_is_exact():
    basket = price_basket([item("milk", 135), item("tea", 10), item("milk", 135), item("tea", 10), item("tea", 10)])
    assert [(line.sku, line.quantity, line.unit_minor, line.amount_minor) for line in basket.lines] == [
        ("milk", 2, 135, 270),
        ("tea", 3, 10, 30),
    ]
    assert basket.total_minor == 300 and basket.attention == ()


def test_unknown_and_unpriced_items_need_attention_and_stay_out_of_the_total():
    basket = price_basket([item("milk", 135), item(None, known=False, score=0.41), item("salt"), item("milk", 135)])
    assert [(a.index, a.reason) for a in basket.attention] == [(1, UNKNOWN), (2, NO_PRICE)]
    assert "0.410" in basket.attention[0].message and "'salt'" in basket.attention[1].message
    assert basket.total_minor == 270 and [line.sku for line in basket.lines] == ["milk"]


def test_empty_basket():
    basket = price_basket([])
    assert (basket.lines, basket.attention, basket.total_minor) == ((), (), 0)
