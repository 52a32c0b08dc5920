import pytest

from service.auth import KeyFileError, KeyRing, check_bind_policy, is_loopback, parse_key_file
from tests.conftest import make_jpeg

KEYS = {"checkout": "lane-key-0123456789", "merchandiser": "merch-key-0123456789", "admin": "admin-key-0123456789"}


def key_file(tmp_path):
    path = tmp_path / "keys"
    path.write_text("# role key\n" + "".join(f"{role} {key}\n" for role, key in KEYS.items()))
    return path


def test_key_file_parsing_and_roles(tmp_path):
    ring = KeyRing(parse_key_file(key_file(tmp_path).read_text()))
    assert ring.role_of(KEYS["merchandiser"]) == "merchandiser"
    assert ring.role_of("wrong-key-0123456789") is None and ring.role_of(None) is None


@pytest.mark.parametrize("text,message", [("cashier abcdefghijklmnopq", "unknown role 'cashier'"),
                                          ("admin short", "at least 16"), ("admin", "expected 'role key'")])
def test_bad_key_files_are_refused_without_quoting_keys(text, message):
    with pytest.raises(KeyFileError) as info:
        parse_key_file(text)
    assert message in str(info.value) and "short" not in str(info.value).replace("at least", "")


def test_bind_policy():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    check_bind_policy("127.0.0.1", keys_enabled=False, insecure=False)
    check_bind_policy("0.0.0.0", keys_enabled=True, insecure=False)
    check_bind_policy("0.0.0.0", keys_enabled=False, insecure=True)
    with pytest.raises(SystemExit, match="--api-keys"):
        check_bind_policy("0.0.0.0", keys_enabled=False, insecure=False)


def test_roles_over_http(make_client, tmp_path):
    client = make_client(api_keys_file=key_file(tmp_path))
    image = {"image": ("a.jpg", make_jpeg(1), "image/jpeg")}
    enrol = [("images", ("a.jpg", make_jpeg(1), "image/jpeg"))]
    r = client.post("/v1/recognize", files=image)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert client.post("/v1/recognize", files=image, headers={"X-API-Key": "nope-nope-nope-nope"}).status_code == 401
    lane = {"X-API-Key": KEYS["checkout"]}
    assert client.post("/v1/recognize", files=image, headers=lane).status_code == 200
    r = client.post("/v1/skus/milk/images", files=enrol, headers=lane)
    assert r.status_code == 403 and "merchandiser" in r.json()["error"]["message"]
    assert client.delete("/v1/skus/milk", headers=lane).status_code == 403
    merch = {"Authorization": f"Bearer {KEYS['merchandiser']}"}
    assert client.post("/v1/skus/milk/images", files=enrol, headers=merch).status_code == 201
    assert client.put("/v1/admin/threshold", json={"threshold": 0.7}, headers=merch).status_code == 403
    admin = {"X-API-Key": KEYS["admin"]}
    assert client.put("/v1/admin/threshold", json={"threshold": 0.7}, headers=admin).json()["threshold"] == 0.7
    assert client.get("/v1/admin/info", headers=admin).json()["reference_images"] == 1
    assert client.post("/v1/recognize", files=image, headers=lane).json()["threshold"] == 0.7
    assert client.delete("/v1/skus/milk", headers=merch).status_code == 204
    assert client.get("/healthz").status_code == 200  # probes need no key


def test_admin_reindex_makes_a_mismatched_gallery_servable(make_client, other_model_dir):
    first = make_client()
    first.post("/v1/skus/milk/images", files=[("images", ("a.jpg", make_jpeg(1), "image/jpeg"))])
    first.__exit__(None, None, None)
    second = make_client(model=other_model_dir)
    assert second.post("/v1/recognize", files={"image": ("a.jpg", make_jpeg(1), "image/jpeg")}).status_code == 409
    report = second.post("/v1/admin/reindex").json()
    assert report["embedded"] == 1 and report["failed"] == {}
    r = second.post("/v1/recognize", files={"image": ("a.jpg", make_jpeg(1), "image/jpeg")})
    assert r.status_code == 200 and r.json()["sku"] == "milk"


def test_cors_closed_by_default(client):
    r = client.options("/v1/recognize", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers
