import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


@pytest.fixture
def make_client(tmp_path, tiny_model_dir):
    clients = []

    def make(**overrides) -> TestClient:
        settings = Settings(**{"data_dir": tmp_path / "data", "model": tiny_model_dir, **overrides})
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()
