"""Schemathesis against the app's own OpenAPI schema, on the real server (bounded)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, tiny_model_dir):
    server = Server(tmp_path_factory.mktemp("st") / "data", tiny_model_dir).start()
    with server.client() as http:
        http.post("/v1/skus/milk/images", files=[("images", ("m.jpg", make_jpeg(1), "image/jpeg"))])
    yield server
    server.stop()


def test_no_server_errors_and_one_error_shape(live_server):
    """Every operation, up to 20 generated requests each: no 5xx, errors in the one shape, server up."""
    api = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 12
    seen = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            response = case.call(base_url=live_server.url, timeout=30)
            seen.append(response.status_code)
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
            if response.status_code >= 400:
                error = response.json()["error"]
                assert set(error) == {"status", "code", "message"} and error["status"] == response.status_code

        check()
    assert len(seen) >= 100
    print(f"schemathesis: {len(operations)} operations, {len(seen)} requests, statuses {sorted(set(seen))}")
    with live_server.client() as http:
        assert http.get("/healthz").status_code == 200
