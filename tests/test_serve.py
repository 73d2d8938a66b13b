"""medkit.serve: an ASGI app served on 127.0.0.1 for the length of a with block, and always stopped."""

import socket
import threading

import httpx
import pytest
from fastapi import FastAPI

from medkit import serve


@pytest.fixture
def app():
    app = FastAPI()

    @app.get("/ping")
    def ping():
        return {"ok": True}

    return app


def test_serves_on_loopback_and_stops_after_the_block(app):
    with serve.running(app) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/ping").json() == {"ok": True}
        assert serve.live() == [url] and serve.port_open(url)
    assert serve.live() == [] and not serve.port_open(url)
    assert not [t for t in threading.enumerate() if t.name.startswith("medkit-serve")]


def test_stops_when_the_block_fails(app):
    with pytest.raises(RuntimeError, match="a cell failed"):
        with serve.running(app) as url:
            raise RuntimeError("a cell failed")
    assert serve.live() == [] and not serve.port_open(url)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org", "::"])
def test_refuses_to_serve_to_the_network(app, host):
    with pytest.raises(ValueError, match="loopback"):
        with serve.running(app, host=host):
            pass


def test_a_port_in_use_is_a_clear_error(app):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="port in use"):
            with serve.running(app, port=port):
                pass
    assert serve.live() == []
