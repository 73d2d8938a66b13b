"""Shared fixtures: small phantom datasets, the real data when present, a local HTTP server."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import sys
import threading
from pathlib import Path

import pytest

# Quiet TensorFlow before any test imports it (medkit.setup() does the same in notebooks).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
# The maintainers' scripts (tools/course.py, tools/assign.py), importable by the tests that check them.
sys.path.insert(0, str(ROOT / "tools"))
SHARED_NPZ = ROOT.parent / "shared" / "data" / "pneumoniamnist.npz"


@pytest.fixture(autouse=True)
def _default_environment(monkeypatch, tmp_path):
    """Every test starts from the defaults, with downloads cached in a temporary folder."""
    monkeypatch.delenv("MEDKIT_PROFILE", raising=False)
    monkeypatch.delenv("MEDKIT_DATASET", raising=False)
    monkeypatch.setenv("MEDKIT_DATA_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_phantom():
    """A small binary phantom dataset (60/20/20 images of 32 px)."""
    from medkit.data import load_phantom

    return load_phantom((60, 20, 20), image_size=32, seed=1)


@pytest.fixture(scope="session")
def tiny_phantom_all():
    """A small five-finding phantom dataset."""
    from medkit.data import load_phantom

    return load_phantom((60, 20, 20), image_size=32, seed=2, labels="all")


@pytest.fixture(scope="session")
def shared_npz():
    """The official-split PneumoniaMNIST in ../shared/data, or skip."""
    if not SHARED_NPZ.is_file():
        pytest.skip(f"real data not present at {SHARED_NPZ} (only on the developers' and CI machines)")
    return SHARED_NPZ


@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` on 127.0.0.1 while the block runs; yields its base URL (no trailing slash)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def http_server(tmp_path):
    """Serve a temporary folder on 127.0.0.1; yields (folder, base_url)."""
    folder = tmp_path / "served"
    folder.mkdir()
    with serve(folder) as url:
        yield folder, url


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
