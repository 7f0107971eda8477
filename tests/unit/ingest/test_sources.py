"""Input sources: inline, local (baseDir + filter, files), http with basic auth."""

from __future__ import annotations

import base64
import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from overlord.ingest.sources import entities
from overlord.ingest.spec import HttpSource, InlineSource, LocalSource
from overlord.ingest.stats import IngestError


def contents(
    source: InlineSource | LocalSource | HttpSource,
) -> list[tuple[str, bytes]]:
    found = []
    for entity in entities(source):
        with entity.open() as stream:
            found.append((entity.name, stream.read()))
    return found


def test_inline() -> None:
    assert contents(InlineSource('{"a":"é"}\n')) == [("inline", '{"a":"é"}\n'.encode())]


def test_local_base_dir_filter_is_recursive_and_sorted(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.json").write_text("b")
    (tmp_path / "sub" / "a.json").write_text("a")
    (tmp_path / "c.csv").write_text("c")
    (tmp_path / "empty.json").write_text("")
    with gzip.open(tmp_path / "d.json.gz", "wt") as out:
        out.write("d")
    source = LocalSource(base_dir=str(tmp_path), filter="*.json*")
    assert contents(source) == [
        (str(tmp_path / "b.json"), b"b"),
        (str(tmp_path / "d.json.gz"), b"d"),
        (str(tmp_path / "sub" / "a.json"), b"a"),
    ]


def test_local_files(tmp_path: Path) -> None:
    (tmp_path / "x.tsv").write_text("x")
    assert contents(LocalSource(files=(str(tmp_path / "x.tsv"),))) == [
        (str(tmp_path / "x.tsv"), b"x")
    ]


def test_local_missing(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="is not a directory"):
        entities(LocalSource(base_dir=str(tmp_path / "nope"), filter="*"))
    with pytest.raises(IngestError, match=r"^File\[.*nope\] does not exist$"):
        entities(LocalSource(files=(str(tmp_path / "nope"),)))


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        _Handler.seen.append(auth)
        expected = "Basic " + base64.b64encode(b"druid:s3cret").decode()
        if auth != expected:
            self.send_response(401)
            self.end_headers()
            return
        body = b'{"page":"A"}\n' * 3
        if self.path.endswith(".gz"):
            body = gzip.compress(body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    _Handler.seen = []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_http_with_basic_auth(server: str) -> None:
    source = HttpSource(
        (f"{server}/a.json", f"{server}/b.json.gz"), username="druid", password="s3cret"
    )
    assert contents(source) == [
        (f"{server}/a.json", b'{"page":"A"}\n' * 3),
        (f"{server}/b.json.gz", b'{"page":"A"}\n' * 3),
    ]
    assert _Handler.seen == ["Basic ZHJ1aWQ6czNjcmV0"] * 2


def test_http_refused(server: str) -> None:
    source = HttpSource((f"{server}/a.json",), username="druid", password="wrong")
    with pytest.raises(
        IngestError, match=r"^Failed to read \[.*/a.json\]: HTTP Error 401"
    ):
        contents(source)


def test_http_other_schemes_refused() -> None:
    with pytest.raises(
        IngestError, match=r"^Only \[http, https\] protocols are allowed$"
    ):
        contents(HttpSource(("file:///etc/passwd",)))
