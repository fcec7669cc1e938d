"""What the CLI prints: counts in words, `sql` results written to files (never binary to a
terminal), and the `flows` table on a terminal of ordinary width."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pandas as pd
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


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_sql_writes_its_result_to_the_file_given_with_o(store, tmp_path, fmt):
    target = tmp_path / f"spans.{fmt}"
    result = tracekit("sql", "--db", store, "-o", str(target), "SELECT name FROM spans ORDER BY name")
    assert result.stdout == b""
    assert f"wrote {target} ({fmt}, 6 rows)" in result.stderr.decode()
    if fmt == "parquet":
        names = pq.read_table(target).column("name").to_pylist()
    elif fmt == "json":
        names = [row["name"] for row in json.loads(target.read_text())]
    else:
        names = target.read_text().splitlines()[1:]
    assert len(names) == 6 and names[0].strip('"') == "POST /api/orders"


def test_sql_refuses_to_write_parquet_to_a_terminal(store):
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run([*TRACEKIT, "sql", "--db", store, "--format", "parquet",
                                 "SELECT name FROM spans"], stdout=terminal, stderr=subprocess.PIPE,
                                timeout=120)
    finally:
        os.close(terminal)
    os.set_blocking(controller, False)
    try:
        written = os.read(controller, 65536)
    except (BlockingIOError, OSError):   # nothing written to the terminal
        written = b""
    finally:
        os.close(controller)
    assert result.returncode == 2
    assert b"write it to a file with -o FILE" in result.stderr
    assert b"PAR1" not in written


def test_sql_o_without_a_format_it_can_tell_is_a_usage_error(store, tmp_path):
    result = tracekit("sql", "--db", store, "-o", str(tmp_path / "out.txt"), "SELECT 1", check=False)
    assert result.returncode == 2 and b"give --format csv|json|parquet" in result.stderr


def test_flows_at_120_columns_keep_the_columns_its_filters_use(store):
    result = subprocess.run([*TRACEKIT, "flows", "--db", store], capture_output=True, timeout=120,
                            env={**os.environ, "COLUMNS": "120"})
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert max(len(line) for line in lines) <= 120
    header = [cell.strip() for cell in lines[1].split("│") if cell.strip()]
    assert {"flow_id", "status", "type", "key"} <= set(header)
    body = "\n".join(lines)
    assert "failed" in body and "o-0000000003" in body and "frontend POST /api/orders" in body


@pytest.mark.parametrize("command", [("flow", "nope"), ("compare", "nope")])
def test_a_flow_id_naming_no_flow_is_a_usage_error_saying_how_to_list_them(store, command):
    result = subprocess.run([*TRACEKIT, command[0], "--db", store, *command[1:]], capture_output=True)
    assert result.returncode == 2
    assert b"no flow matches 'nope'" in result.stderr and b"`tracekit flows`" in result.stderr


def test_causes_json_gives_its_windows_as_the_report_and_flows_give_times(store):
    out = json.loads(tracekit("causes", "--db", store, "--since", "1d", "--json").stdout)
    flows = json.loads(tracekit("flows", "--db", store, "--json").stdout)
    for part in ("window", "baseline"):
        span = out[part]
        assert isinstance(span["start_ns"], int) and span["start_ns"] < span["end_ns"]
        # UTC text as flows --json gives a flow's start, to the nanosecond.
        assert pd.Timestamp(span["start"]).value == span["start_ns"]
        assert pd.Timestamp(span["end"]).value == span["end_ns"]
    assert pd.Timestamp(flows[0]["start"])
    assert out["window"]["start_ns"] == out["baseline"]["end_ns"]
