"""The file beside a store that tells readers where its running collector answers queries."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class CollectorEndpoint:
    """How to reach the collector that holds a store."""

    pid: int
    query_url: str
    token: str
    grpc: str
    http: str
    ingest_token: str | None = None   # the receivers' bearer token, when they require one
    tls_cert: str | None = None   # the receivers' certificate file, when they use TLS
    mtls: bool = False            # whether they also require a client certificate


def endpoint_path(store_path: str | os.PathLike) -> Path:
    return Path(f"{os.fspath(store_path)}.collector.json")


def publish(store_path: str | os.PathLike, endpoint: CollectorEndpoint) -> Path:
    """Write the endpoint file, readable by this user only (it holds the query token)."""
    path = endpoint_path(store_path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(endpoint), out)
    os.replace(tmp, path)
    return path


def withdraw(store_path: str | os.PathLike) -> None:
    endpoint_path(store_path).unlink(missing_ok=True)


def find(store_path: str | os.PathLike) -> CollectorEndpoint | None:
    """The endpoint of a live collector on this store, or None (a stale file is ignored)."""
    path = endpoint_path(store_path)
    try:
        data = json.loads(path.read_text())
        endpoint = CollectorEndpoint(**data)
    except (OSError, ValueError, TypeError):
        return None
    try:
        os.kill(endpoint.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return endpoint
