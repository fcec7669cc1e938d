"""What the data of a window lacks or had adjusted (report/limits.sql): the report's Limits
section, and the notes `tracekit causes` prints with its ranking."""

from __future__ import annotations

from tracekit.report import queries
from tracekit.report.model import Limit

# Each figure of limits.sql, with what it means for the answer.
TEXTS = {
    "orphan_spans": "spans whose parent span was never stored (their flows may be cut in two)",
    "skew_adjusted_spans": "spans moved to fit in their parent for clock skew (read time only)",
    "hops_received_before_sent": "hops through a broker received before they were sent: the "
                                 "hosts' clocks disagree, so their waits read as 0 and times "
                                 "across them are not comparable",
    "spans_with_dropped_data": "spans whose SDK dropped attributes, events or links",
    "spans_adjusted_at_ingest": "spans adjusted at ingest (clamped times, end before start, "
                                "invalid parent ids)",
    "spans_without_service": "spans of no named service (no service.name: stored as "
                             "unknown_service): what failed or slowed there is not put on "
                             "any service",
    "incomplete_flows": "flows still incomplete or running: their outcome is not known yet",
    "logs_without_trace_context": "warning and error logs without trace context: they are "
                                  "listed by pattern but joined to no span, so they are no "
                                  "evidence against an operation",
}


def limits_of(q) -> list[Limit]:
    """The report's limits, each with the figure that counts it (`q`: the report's figures)."""
    result = q.run("limits")
    row = result.first
    return [Limit(column, f"{row[column]} {text}", q.keep(result.figure(text, column)))
            for column, text in TEXTS.items() if row.get(column)]


def window_limits(store, start_ns: int, end_ns: int) -> list[str]:
    """The same limits of the flows started in [start_ns, end_ns), as sentences."""
    row = queries.run(store, "limits", {"start": queries.timestamp(start_ns),
                                        "end": queries.timestamp(end_ns),
                                        "type_ids": None, "flow_id": None}).first
    return [f"{row[column]} {text}" for column, text in TEXTS.items() if row.get(column)]
