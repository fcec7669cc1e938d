"""The analyzer: flows across traces, their edges, styles, types, critical paths and failures.

Everything here is a pure function of the spans it is given (`spans.load` reads them from a
store); nothing writes to the store. `tracekit.analysis.run.analyze(store)` runs it all.
"""

import re

TABLES = ("flows", "flow_spans", "flow_edges", "flow_types", "critical_path", "service_edges")
_NAMED = re.compile(r"\b(?:from|join)\s+(" + "|".join(TABLES) + r")\b", re.IGNORECASE)


def referenced(sql: str) -> set[str]:
    """The analysis tables a query reads (FROM/JOIN name). Light: no pandas is imported."""
    return {m.lower() for m in _NAMED.findall(sql)}
