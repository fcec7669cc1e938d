"""What the CLI prints: counts in words, `sql` results written to files (never binary to a
terminal), and the `flows` table on a terminal of ordinary width."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pyarrow.parquet as pq
import pytest

from conftest import TRACEKIT, tracekit
from span_documents import request, span, write


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """Three orders, each one trace of two spans with a business key; the last one fails."""
    folder = tmp_path_factory.mktemp("cli_output")
    spans = []
    for i in range(1, 4):
        trace = f"{i:032x}"
        spans += [span(trace, f"{i:08x}00000001", "POST /api/orders", start_ms=i * 1000,
                       duration_ms=50, error=i == 3, attributes={"order.id": f"o-{i:010d}"}),
                  span(trace, f"{i:08x}00000002", "reserve inventory and charge the card", kind=3,
                       parent=f"{i:08x}00000001", start_ms=i * 1000 + 5, duration_ms=30,
                       error=i == 3)]
    db = folder / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(folder / "spans.jsonl", request("frontend", spans))))
    return str(db)


def test_a_count_of_one_is_printed_in_the_singular(store, tmp_path):
    flow = tracekit("flow", "--db", store, "o-0000000001").stdout.decode()
    assert "1 trace," in flow and "1 traces" not in flow
    db = tmp_path / "one.duckdb"
    one = write(tmp_path / "one.jsonl", request("frontend", [span("a" * 32, "b" * 16, "GET /")]))
    imported = tracekit("import", "--db", str(db), str(one)).stdout.decode()
    assert "imported 1 file, 1 document: 1 span, 0 logs stored; 0 duplicate spans ignored" in imported
