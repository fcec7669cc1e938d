"""Where a lake is: its URI, and the Iceberg catalog (in PostgreSQL) it names."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tracekit.errors import TracekitError, UsageError

NAMESPACE = "tracekit"
CATALOG_NAME = "tracekit"
URI_FORM = "postgresql://USER@HOST:PORT/DATABASE?warehouse=/path/to/dir"


class LakeUnavailable(TracekitError):
    """The lake's catalog cannot be reached, or its extra is not installed."""


@dataclass(frozen=True)
class LakeLocation:
    """A lake: the catalog's database (SQLAlchemy URI) and the warehouse directory."""

    catalog_uri: str
    warehouse: Path

    @classmethod
    def parse(cls, uri: str) -> LakeLocation:
        """`postgresql://user@host:port/db?warehouse=/dir` → a LakeLocation; UsageError if not."""
        parts = urlsplit(uri)
        if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg2"):
            raise UsageError(f"--lake {uri!r}: give the catalog's PostgreSQL database and the "
                             f"warehouse directory, as {URI_FORM}")
        query = dict(parse_qsl(parts.query))
        warehouse = query.pop("warehouse", None)
        if not warehouse or not parts.path.strip("/"):
            raise UsageError(f"--lake {uri!r} needs a database and ?warehouse=DIR: {URI_FORM}")
        catalog = urlunsplit(("postgresql+psycopg2", parts.netloc, parts.path, urlencode(query), ""))
        return cls(catalog, Path(warehouse).resolve())

    def open_catalog(self, attempts: int = 5):
        """The SqlCatalog, creating its tables in the database on first use. Collectors that
        start together may race to create them: a failed first open is tried again."""
        try:
            from pyiceberg.catalog.sql import SqlCatalog
            from sqlalchemy.exc import SQLAlchemyError
        except ImportError:
            raise LakeUnavailable("the lake needs its extra: pip install 'tracekit[lake]'") from None
        self.warehouse.mkdir(parents=True, exist_ok=True)
        for attempt in range(attempts):
            try:
                return SqlCatalog(CATALOG_NAME, uri=self.catalog_uri,
                                  warehouse=self.warehouse.as_uri(), pool_pre_ping="true")
            except SQLAlchemyError as exc:
                if attempt == attempts - 1:
                    raise LakeUnavailable(f"cannot open the lake's catalog at {self.display()}: "
                                          f"{str(exc).splitlines()[0]}") from None
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def display(self) -> str:
        """The catalog's address without a password."""
        parts = urlsplit(self.catalog_uri)
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return f"postgresql://{user + '@' if user else ''}{host}{parts.path}"
