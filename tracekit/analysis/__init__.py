"""The analyzer: flows across traces, their edges, styles, types, critical paths and failures.

The analysis itself is a pure function of the spans it is given (`run.analyze_spans`);
`persist` keeps its results in the store's analysis tables as batches arrive, and readers
read those (`windowed`). `tracekit.analysis.run.analyze(store)` analyzes a whole store in
memory: the reference the stored tables are tested against.
"""

import re

# Attributes that carry a business key shared by every step of a workflow (configurable).
DEFAULT_BUSINESS_KEYS = ("order.id", "order_id", "business.key")
TABLES = ("flows", "flow_spans", "flow_edges", "flow_types", "critical_path", "service_edges")
# Every relation the analysis keeps in the store: a query naming one waits, through a
# collector, until the analysis holds what was acknowledged before it.
STORED = TABLES + ("flows_at", "flow_rows", "flow_traces", "flow_links", "flow_message_ids",
                   "flow_business_keys", "flow_type_steps", "flow_shapes", "flow_type_rows",
                   "analysis_progress", "analysis_forget")
_NAMED = re.compile(r"\b(?:from|join)\s+(" + "|".join(sorted(STORED, key=len, reverse=True))
                    + r")\b", re.IGNORECASE)


def referenced(sql: str) -> set[str]:
    """The analysis tables a query reads (FROM/JOIN name). Light: no pandas is imported."""
    return {m.lower() for m in _NAMED.findall(sql)}
