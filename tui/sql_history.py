"""The SQL console's history, kept in a file across runs (one JSON object a line)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

KEPT = 500      # queries kept; the oldest go first


def default_path(environ: Mapping[str, str] = os.environ) -> Path:
    """TRACEKIT_SQL_HISTORY, else $XDG_STATE_HOME/tracekit/sql_history (~/.local/state when unset)."""
    if environ.get("TRACEKIT_SQL_HISTORY"):
        return Path(environ["TRACEKIT_SQL_HISTORY"])
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tracekit" / "sql_history"


class SqlHistory:
    """Queries run, oldest first; each one added is written at once (a crash loses none)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.queries: list[str] = []
        self.error: str | None = None       # why the file could not be read or written
        if path is not None and path.exists():
            try:
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        query = json.loads(line).get("sql")
                    except (ValueError, AttributeError):
                        continue        # a line cut short by a crash: skip it
                    if isinstance(query, str) and query.strip():
                        self.queries.append(query)
            except OSError as exc:
                self.error = str(exc)
            self.queries = self.queries[-KEPT:]

    def add(self, query: str) -> None:
        if self.queries and self.queries[-1] == query:
            return
        self.queries.append(query)
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if len(self.queries) > KEPT:      # rewrite without the oldest
                self.queries = self.queries[-KEPT:]
                self.path.write_text("".join(json.dumps({"sql": q}) + "\n" for q in self.queries),
                                     encoding="utf-8")
            else:
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps({"sql": query}) + "\n")
        except OSError as exc:      # kept in memory: the console still recalls it this run
            self.error = str(exc)
