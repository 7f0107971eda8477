"""Deep storage: a local directory or any filesystem URI pyarrow opens
(``s3://bucket/prefix``, ``gs://…``, ``hdfs://…``, ``file:///…``)."""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from overlord.ingest.stats import IngestError


class DeepStorage:
    """Where segment files go, and how their ``loadSpec`` names them."""

    def __init__(self, location: str) -> None:
        if "://" in location:
            try:
                self.filesystem, root = pafs.FileSystem.from_uri(location)
            except (pa.ArrowException, OSError, ValueError) as error:
                raise IngestError(
                    f"Cannot use deep storage [{location}]: {error}"
                ) from error
            self.prefix = location.rstrip("/")
        else:
            self.filesystem = pafs.LocalFileSystem()
            root = os.path.abspath(location)
            self.prefix = root
        self.root = root.rstrip("/")
        self.local = isinstance(self.filesystem, pafs.LocalFileSystem)

    def path(self, relative: str) -> str:
        """The filesystem path of ``relative`` under the root."""
        return f"{self.root}/{relative}"

    def prepare(self, relative: str) -> str:
        """Create the parent directories of ``relative``; its filesystem path."""
        path = self.path(relative)
        self.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        return path

    def size(self, relative: str) -> int:
        return int(self.filesystem.get_file_info(self.path(relative)).size)

    def delete(self, relative: str) -> None:
        self.filesystem.delete_file(self.path(relative))

    def load_spec(self, relative: str) -> dict[str, Any]:
        """``{"type": "local", "path": <absolute path>}`` for local storage (Druid's
        LocalDataSegmentPusher shape); else the filesystem's type and the full URI,
        which :func:`delete_segment_file` opens again."""
        if self.local and "://" not in self.prefix:
            return {"type": "local", "path": self.path(relative)}
        return {"type": self.filesystem.type_name, "path": f"{self.prefix}/{relative}"}


def delete_segment_file(load_spec: dict[str, Any]) -> None:
    """Remove the file a ``loadSpec`` written by this engine names (for ``kill``);
    a file already gone is not an error."""
    path = str(load_spec["path"])
    if "://" in path:
        filesystem, inner = pafs.FileSystem.from_uri(path)
    else:
        filesystem, inner = pafs.LocalFileSystem(), path
    if filesystem.get_file_info(inner).type == pafs.FileType.NotFound:
        return
    filesystem.delete_file(inner)
