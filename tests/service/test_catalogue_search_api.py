"""GET /v1/skus?q= and `skulens skus --search`: the same search, paged like the list."""

import json

from service.cli import main


def test_search_through_the_api_is_paged_like_the_list(client):
    for sku, name, price in [
        ("arla-milk-1l", "Arla Milk 1L", "1.35"),
        ("milka-choc", "Milka Chocolate", None),
        ("bread", "Rye bread", "2.10"),
    ]:
        assert client.put(f"/v1/skus/{sku}", json={"name": name, "price": price}).status_code == 201
    page = client.get("/v1/skus", params={"q": "MILK"}).json()
    assert [s["sku"] for s in page["items"]] == ["arla-milk-1l", "milka-choc"] and page["total"] == 2
    assert page["items"][0]["price"] == "1.35"
    page = client.get("/v1/skus", params={"q": "milk", "offset": 1, "limit": 1}).json()
    assert [s["sku"] for s in page["items"]] == ["milka-choc"] and (page["total"], page["offset"]) == (2, 1)
    assert client.get("/v1/skus", params={"q": "ry"}).json()["total"] == 1  # short: the LIKE path
    assert client.get("/v1/skus", params={"q": "nothing"}).json() == {"items": [], "total": 0, "offset": 0, "limit": 50}
    r = client.get("/v1/skus", params={"q": ""})
    assert r.status_code == 422 and "q" in r.json()["error"]["message"]
    assert client.get("/v1/skus", params={"q": "x" * 101}).status_code == 422


def test_skus_command_searches_without_a_model(client, tmp_path, capsys):
    client.put("/v1/skus/arla-milk-1l", json={"name": "Arla Milk 1L", "price": "1.35"})
    client.put("/v1/skus/bread", json={"name": "Rye bread"})
    data = str(tmp_path / "data")
    assert main(["skus", "--data-dir", data, "--search", "Milk", "--json"]) == 0
    page = json.loads(capsys.readouterr().out)
    assert page["total"] == 1 and page["items"][0] == {
        "sku": "arla-milk-1l",
        "name": "Arla Milk 1L",
        "price": "1.35",
        "currency": "EUR",
        "image_count": 0,
    }
    assert main(["skus", "--data-dir", data]) == 0
    out = capsys.readouterr().out
    assert "arla-milk-1l" in out and "1.35 EUR" in out and "(1-2 of 2)" in out
    assert main(["skus", "--data-dir", str(tmp_path / "none")]) == 2
    assert "no catalogue at" in capsys.readouterr().err
