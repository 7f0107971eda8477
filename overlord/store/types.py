"""Column types shared by every model, portable across SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import mapped_column
from sqlalchemy.types import TypeDecorator

_MARIADB = ("mysql", "mariadb")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes with microsecond storage on every backend.

    Stored naive in UTC. MariaDB's plain DATETIME drops fractions, so it gets
    DATETIME(6); SQLite stores SQLAlchemy's fixed-width text, which sorts correctly.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in _MARIADB:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def exact_string(length: int = 255) -> String:
    """A string compared exactly, as Druid compares ids: case and trailing spaces count.

    MariaDB's default collations ignore case and pad trailing spaces, so there the
    column uses the binary no-pad collation.
    """
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_nopad_bin"),
        *_MARIADB,
    )


# Documents returned on the wire (payloads, reports) and task logs: TEXT is 64 KiB
# on MariaDB, so these are LONGTEXT/LONGBLOB there.
LongText = Text().with_variant(mysql.LONGTEXT(), *_MARIADB)
LongBlob = LargeBinary().with_variant(mysql.LONGBLOB(), *_MARIADB)
# Monotonic, never reused surrogate keys: BIGINT everywhere but SQLite, whose
# INTEGER PRIMARY KEY is the rowid (AUTOINCREMENT is set per table).
SurrogateKey = BigInteger().with_variant(Integer(), "sqlite")

surrogate_pk = Annotated[
    int, mapped_column(SurrogateKey, primary_key=True, autoincrement=True)
]
# Marker types for the models' type_annotation_map (``Mapped[DruidId | None]`` works).
DruidId = Annotated[str, "druid_id"]
LongStr = Annotated[str, "long_text"]
LongBytes = Annotated[bytes, "long_blob"]

TYPE_ANNOTATION_MAP: dict[Any, Any] = {
    str: String(255),
    dt.datetime: UTCDateTime(),
    DruidId: exact_string(),
    LongStr: LongText,
    LongBytes: LongBlob,
}
