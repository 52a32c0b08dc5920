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


@pytest.mark.parametrize(
    "text,message",
    [
        ("cashier abcdefghijklmnopq", "unknown role 'cashier'"),
        ("admin short", "at least 16"),
        ("admin", "expected 'role key'"),
    ],
)
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


def test_reindex_is_the_command_line_job_and_a_running_server_picks_it_up(make_client, other_model_dir, tmp_path):
    first = make_client()
    first.post("/v1/skus/milk/images", files=[("images", ("a.jpg", make_jpeg(1), "image/jpeg"))])
    first.__exit__(None, None, None)
    second = make_client(model=other_model_dir)
    assert second.post("/v1/recognize", files={"image": ("a.jpg", make_jpeg(1), "image/jpeg")}).status_code == 409
    assert second.post("/v1/admin/reindex").status_code in (404, 405)  # not an HTTP operation any more
    from service.cli import main

    assert main(["reindex", "--data-dir", str(tmp_path / "data"), "--model", str(other_model_dir)]) == 0
    r = second.post("/v1/recognize", files={"image": ("a.jpg", make_jpeg(1), "image/jpeg")})
    assert r.status_code == 200 and r.json()["sku"] == "milk"


def test_cors_closed_by_default(client):
    r = client.options(
        "/v1/recognize", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in r.headers


def test_key_file_without_keys_is_no_keys_where_the_app_is_built(tmp_path):
    """A key file holding only comments must not open the API to the network (uvicorn --factory included)."""
    from service.app import StartupError, create_app
    from service.settings import Settings

    empty = tmp_path / "keys"
    empty.write_text("# no keys yet\n\n   \n")
    with pytest.raises(StartupError, match="no API keys"):
        create_app(Settings(data_dir=tmp_path / "data", host="0.0.0.0", api_keys_file=empty))
    create_app(Settings(data_dir=tmp_path / "data", host="0.0.0.0", api_keys_file=empty, insecure=True))
    create_app(Settings(data_dir=tmp_path / "data", host="127.0.0.1", api_keys_file=empty))
    with pytest.raises(StartupError, match="line 1"):  # a bad key file fails where the app is built too
        bad = tmp_path / "bad"
        bad.write_text("admin short\n")
        create_app(Settings(data_dir=tmp_path / "data", api_keys_file=bad))


def test_open_server_answers_only_on_loopback_addresses():
    """``uvicorn --factory --host 0.0.0.0`` never tells the factory its address: a keyless app refuses
    requests that arrive on a non-loopback local address."""
    import asyncio

    from service.auth import LoopbackOnly

    async def inner(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def status_for(server):
        sent = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b""}

        scope = {"type": "http", "method": "GET", "path": "/healthz", "headers": [], "server": server}
        asyncio.run(LoopbackOnly(inner)(scope, receive, send))
        return sent[0]["status"]

    assert status_for(("127.0.0.1", 8000)) == 200 and status_for(("::1", 8000)) == 200
    assert status_for(("testserver", 80)) == 200 and status_for(None) == 200  # not an address: a test client, a socket
    assert status_for(("10.1.2.3", 8000)) == 403 and status_for(("0.0.0.0", 8000)) == 403


def test_serve_refuses_a_key_file_without_keys_on_the_network(tmp_path):
    """The real command line: one clear line on stderr, a non-zero exit, no server started."""
    import subprocess
    import sys

    from tests.e2e.server import free_port

    empty = tmp_path / "keys"
    empty.write_text("# only a comment\n")
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
        "--api-keys",
        str(empty),
        "--data-dir",
        str(tmp_path / "d"),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("skulens serve started an open server on 0.0.0.0 with a key file holding no keys")
    assert done.returncode == 2 and "no API keys" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
