"""The MovieLens download path against an HTTP server on 127.0.0.1 that the test starts."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from lightning_divrec.data.sources import ml100k


@pytest.fixture
def archive_server(tmp_path: Path):
    """Serve a small ml-100k.zip over HTTP on loopback; yield (url, bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("ml-100k/u.data", "1\t1\t5\t100\n1\t2\t4\t101\n")
        bundle.writestr("ml-100k/u.item", "1|A (1990)|||u|" + "|".join("0" * 19) + "\n2|B (1991)|||u|" + "|".join("1" + "0" * 18) + "\n")
    payload = buffer.getvalue()
    served = tmp_path / "served"
    served.mkdir()
    (served / "ml-100k.zip").write_bytes(payload)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ml-100k.zip", payload
    finally:
        server.shutdown()
        server.server_close()


def test_download_verifies_and_unpacks(archive_server, tmp_path: Path):
    url, payload = archive_server
    folder = ml100k.download_ml100k(tmp_path / "cache", url=url, md5=hashlib.md5(payload).hexdigest(), size=len(payload))
    assert folder == tmp_path / "cache" / "ml-100k"
    files = ml100k.files_in(folder)
    ratings, items = files.read()
    assert ratings["item"].tolist() == [1, 2]
    assert items["categories"].tolist() == [[], ["unknown"]]


def test_checksum_mismatch_leaves_nothing(archive_server, tmp_path: Path):
    url, payload = archive_server
    with pytest.raises(OSError, match="failed verification"):
        ml100k.download_ml100k(tmp_path / "cache", url=url, md5="0" * 32, size=len(payload))
    assert list((tmp_path / "cache").iterdir()) == []
