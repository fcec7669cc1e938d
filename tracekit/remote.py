"""Reading a store through the query endpoint of the collector that holds it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa

from tracekit import errors
from tracekit.discovery import CollectorEndpoint
from tracekit.store import Store

ARROW_STREAM = "application/vnd.apache.arrow.stream"


class RemoteStore(Store):
    """A store held by a running collector; every query goes to its local endpoint."""

    remote = True

    def __init__(self, path: Path, endpoint: CollectorEndpoint, timeout_s: float | None):
        super().__init__(path, timeout_s)
        self.endpoint = endpoint

    def arrow(self, sql: str, params: list | dict | None = None, max_rows: int | None = None,
              cancel=None) -> pa.Table:
        """`cancel` drops the answer when it comes (the collector runs the query to its end or
        its timeout: the endpoint has no way to stop it)."""
        table = self._arrow(sql, params, max_rows)
        if cancel is not None and cancel.cancelled:
            raise errors.QueryCancelled("query cancelled")
        return table

    def _arrow(self, sql: str, params: list | dict | None, max_rows: int | None) -> pa.Table:
        body = json.dumps({"sql": sql, "params": params, "timeout_s": self.timeout_s,
                           "max_rows": max_rows}, default=str).encode()
        request = urllib.request.Request(
            self.endpoint.query_url, data=body, method="POST",
            headers={"Authorization": f"Bearer {self.endpoint.token}",
                     "Content-Type": "application/json"},
        )
        http_timeout = (self.timeout_s or 3600) + 30
        try:
            with urllib.request.urlopen(request, timeout=http_timeout) as response:
                return pa.ipc.open_stream(response.read()).read_all()
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                answer = {}
            message = answer.get("error") or f"query endpoint answered HTTP {exc.code}"
            error_type = getattr(errors, answer.get("type", ""), errors.QueryError)
            if not (isinstance(error_type, type) and issubclass(error_type, errors.QueryError)):
                error_type = errors.QueryError
            raise error_type(message) from None
        except (urllib.error.URLError, OSError) as exc:
            raise errors.StoreLocked(
                f"{self.path} is held by collector process {self.endpoint.pid}, but its query "
                f"endpoint did not answer ({exc}); is it still starting or stuck?"
            ) from None
