"""Prices through the API: decimal strings out; strings or JSON numbers (read as their decimal text)
in; bad prices get 422 quoting what was received, and change nothing."""

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.startup import StartupError


def put_raw(client, sku: str, body: str):
    return client.put(f"/v1/skus/{sku}", content=body.encode(), headers={"Content-Type": "application/json"})


def test_prices_are_exact_decimal_strings(client):
    r = client.put("/v1/skus/milk", json={"name": "Milk", "price": "2.35"})
    assert r.status_code == 201 and (r.json()["price"], r.json()["currency"]) == ("2.35", "EUR")
    assert put_raw(client, "milk", '{"name": "Milk", "price": 2.3}').json()["price"] == "2.30"
    assert put_raw(client, "bread", '{"name": "Bread", "price": 3}').json()["price"] == "3.00"
    assert put_raw(client, "salt", '{"name": "Salt", "price": 0.10}').json()["price"] == "0.10"
    assert put_raw(client, "free", '{"name": "Free", "price": null}').json()["price"] is None
    listed = {s["sku"]: s["price"] for s in client.get("/v1/skus").json()["items"]}
    assert listed == {"bread": "3.00", "free": None, "milk": "2.30", "salt": "0.10"}


@pytest.mark.parametrize(
    "price, shown, says",
    [
        ('"-1"', "'-1'", "negative"),
        ("-0.5", "-0.5", "negative"),
        ("NaN", "NaN", "not a finite"),
        ("Infinity", "Infinity", "not a finite"),
        ('"Infinity"', "'Infinity'", "not a finite"),
        ("1e400", "1E+400", "above the largest"),
        ('"2.351"', "'2.351'", "more decimals than EUR"),
        ("2.3500000000000000001", "2.3500000000000000001", "more decimals than EUR"),  # a float would say 2.35
        ('"two"', "'two'", "not a decimal number"),
        ("true", "True", "not a number"),
        ("[2]", "[2]", "not a decimal"),
        ('"2.35000000000000000000000000001"', "'2.35000000000000000000000000001'", "more decimals than EUR"),
        ('"999999999.999999999999999999999"', "'999999999.999999999999999999999'", "more decimals than EUR"),
        ("1e-999999999999999999", "1E-999999999999999999", "more decimals than EUR"),
        ("1e999999999999999999", "1E+999999999999999999", "above the largest"),
        ('"1_000.5"', "'1_000.5'", "not a plain decimal"),
        ('"\u0661\u0662"', "'\u0661\u0662'", "not a plain decimal"),
        ('"1e-2"', "'1e-2'", "not a plain decimal"),
    ],
)
def test_bad_prices_get_422_quoting_the_value_and_change_nothing(client, price, shown, says):
    assert client.put("/v1/skus/milk", json={"name": "Milk", "price": "1.00"}).status_code == 201
    r = put_raw(client, "milk", f'{{"name": "Changed", "price": {price}}}')
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert says in message and shown in message and "body.price" in message
    stored = client.get("/v1/skus/milk").json()
    assert (stored["name"], stored["price"]) == ("Milk", "1.00")


def test_currency_setting_sets_the_exponent(make_client):
    client = make_client(currency="JPY")
    got = client.put("/v1/skus/rice", json={"name": "Rice", "price": 450}).json()
    assert (got["price"], got["currency"]) == ("450", "JPY")
    r = client.put("/v1/skus/rice", json={"name": "Rice", "price": "450.5"})
    assert r.status_code == 422 and "more decimals than JPY has (0)" in r.json()["error"]["message"]


def test_a_catalogue_priced_in_another_currency_is_refused_at_start(make_client, tmp_path, tiny_model_dir):
    client = make_client()
    client.put("/v1/skus/milk", json={"name": "Milk", "price": "1.35"})
    client.__exit__(None, None, None)
    with pytest.raises(StartupError, match="prices are in EUR .* SKULENS_CURRENCY=EUR"):
        create_app(Settings(data_dir=tmp_path / "data", model=tiny_model_dir, currency="USD"))
    with pytest.raises(ValueError, match="unknown currency 'EURO'"):
        Settings(currency="EURO")


def test_an_old_priced_catalogue_needs_skulens_currency_to_start(tmp_path, tiny_model_dir, monkeypatch, capsys):
    """The currency setting not given (not merely EUR by default) and a first-release catalogue with
    prices: `skulens serve` stops with one line saying how to set it; with it set, the prices are read in it."""
    from service.cli import main
    from tests.gallery.test_migration import release_0_catalogue

    data = tmp_path / "data"
    data.mkdir()
    release_0_catalogue(data / "catalog.sqlite3", {"rice": 450.0})
    monkeypatch.delenv("SKULENS_CURRENCY", raising=False)
    assert Settings().currency is None  # not set, told apart from a default
    assert main(["serve", "--data-dir", str(data), "--model", str(tiny_model_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SKULENS_CURRENCY" in err and "1 SKU has a price" in err, err
    monkeypatch.setenv("SKULENS_CURRENCY", "JPY")
    with TestClient(create_app(Settings(data_dir=data, model=tiny_model_dir))) as client:
        got = client.get("/v1/skus/rice").json()
    assert (got["price"], got["currency"]) == ("450", "JPY")


def test_non_json_body_is_refused(client):
    r = client.put("/v1/skus/milk", content=b"name=Milk", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = put_raw(client, "milk", '{"name": "Milk", ')
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]["message"]
