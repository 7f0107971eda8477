"""Input sources: what to read, as a list of entities each opened as a byte stream.

Nothing is read whole into memory: files and HTTP bodies are streamed (``.gz`` is
decompressed on the fly, as Druid's CompressionUtils does by extension).
"""

from __future__ import annotations

import base64
import fnmatch
import gzip
import io
import os
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from overlord.ingest.spec import HttpSource, InlineSource, InputSource, LocalSource
from overlord.ingest.stats import IngestError

HTTP_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class InputEntity:
    """One input split: a name for messages and a way to open it."""

    name: str
    opener: Callable[[], BinaryIO]

    def open(self) -> BinaryIO:
        stream = self.opener()
        if urllib.parse.urlsplit(self.name).path.endswith(".gz"):
            return _Gunzip(stream)  # type: ignore[return-value]
        return stream


class _Gunzip(gzip.GzipFile):
    """Decompresses a stream and closes it when closed (GzipFile leaves it open)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def entities(source: InputSource) -> list[InputEntity]:
    """The entities of a source, in a stable order.

    Raises:
        IngestError: a local ``baseDir`` that is not a directory or a missing file.
    """
    if isinstance(source, InlineSource):
        data = source.data.encode("utf-8")
        return [InputEntity("inline", lambda: io.BytesIO(data))]
    if isinstance(source, LocalSource):
        return [_file_entity(path) for path in local_files(source)]
    return [_http_entity(source, uri) for uri in source.uris]


def local_files(source: LocalSource) -> list[str]:
    """Druid's LocalInputSource: every file under ``baseDir`` (recursively) whose
    name matches the ``filter`` wildcard, then the listed ``files``; empty files are
    skipped as Druid skips them."""
    paths: list[str] = []
    if source.base_dir is not None:
        if not os.path.isdir(source.base_dir):
            raise IngestError(f"baseDir[{source.base_dir}] is not a directory")
        pattern = source.filter or "*"
        found = []
        for root, _dirs, names in os.walk(source.base_dir):
            found += [
                os.path.join(root, name)
                for name in names
                if fnmatch.fnmatchcase(name, pattern)
            ]
        paths += sorted(found)
    for path in source.files:
        if not os.path.isfile(path):
            raise IngestError(f"File[{path}] does not exist")
        paths.append(path)
    return [path for path in paths if os.path.getsize(path) > 0]


def _file_entity(path: str) -> InputEntity:
    return InputEntity(path, lambda: open(path, "rb"))


def _http_entity(source: HttpSource, uri: str) -> InputEntity:
    def opener() -> BinaryIO:
        request = urllib.request.Request(uri)  # noqa: S310 (http/https checked below)
        if urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
            # Druid's HttpInputSource.throwIfInvalidProtocols (default allowed set).
            raise IngestError("Only [http, https] protocols are allowed")
        if source.username is not None:
            # Druid's HttpEntity: preemptive basic auth when a username is given.
            secret = f"{source.username}:{source.password or ''}".encode()
            request.add_header(
                "Authorization", "Basic " + base64.b64encode(secret).decode("ascii")
            )
        try:
            response = urllib.request.urlopen(  # noqa: S310
                request, timeout=HTTP_TIMEOUT_SECONDS
            )
        except OSError as error:
            raise IngestError(f"Failed to read [{uri}]: {error}") from error
        stream: BinaryIO = response
        return stream

    return InputEntity(uri, opener)
