"""tools/install_detectron2.py finds the sdist through the index pip is configured with and keeps
the sha256 check (a local HTTP server stands in for the index; no network)."""

from __future__ import annotations

import hashlib
import http.server
import json
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import install_detectron2 as installer  # noqa: E402

SDIST_BYTES = b"not really an sdist"


@pytest.fixture()
def index_server(tmp_path):
    """An index at http://127.0.0.1:PORT/simple/ whose pb1-detectron2 page (PEP 691 JSON) lists
    the sdist under a relative URL."""
    files = {
        "/simple/pb1-detectron2/": json.dumps(
            {
                "files": [
                    {"filename": "pb1-detectron2-0.5.tar.gz", "url": "../../files/old.tar.gz"},
                    {"filename": installer.SDIST_NAME, "url": "../../files/pb1.tar.gz"},
                ]
            }
        ).encode(),  # fmt: skip
        "/files/pb1.tar.gz": SDIST_BYTES,
    }
    requested = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requested.append((self.path, self.headers.get("Accept")))
            body = files.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/simple", requested
    server.shutdown()


def test_index_download_follows_pip_index_url_and_checks_sha256(
    index_server, tmp_path, monkeypatch
):
    index, requested = index_server
    monkeypatch.setenv("PIP_INDEX_URL", index)
    monkeypatch.delenv("PIP_PROXY", raising=False)
    monkeypatch.setattr(installer, "pip_download", lambda dest: None)  # as pip >= 26 on PyPI
    monkeypatch.setattr(installer, "SDIST_SHA256", hashlib.sha256(SDIST_BYTES).hexdigest())
    path = installer.download(tmp_path, None)
    assert path.read_bytes() == SDIST_BYTES
    assert requested[0] == ("/simple/pb1-detectron2/", "application/vnd.pypi.simple.v1+json")
    assert requested[1][0] == "/files/pb1.tar.gz"  # the 0.6 sdist, relative URL resolved
    monkeypatch.setattr(installer, "SDIST_SHA256", "0" * 64)
    with pytest.raises(SystemExit, match="refusing to install it"):
        installer.download(tmp_path, None)


def test_pip_setting_prefers_the_environment(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    assert installer.pip_setting("index-url") == "https://mirror.example/simple"
