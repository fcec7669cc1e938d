"""Keeping an analysis up to date as spans arrive, without redoing the whole store.

New spans can only change the flows they touch: the flows of their own traces, and the flows
of older spans they connect to (a link to an older producer, an older consumer linked to a
producer that arrived late, a shared message id or business key). Those flows are analyzed
again together with the new spans; every other flow keeps its results. Flow types, and so
which flows are incomplete, are then recomputed from the per-flow results (cheap).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracekit.analysis.model import Analysis
from tracekit.analysis.run import _mark_incomplete, analyze_spans, critical_paths, flow_types


class LiveAnalysis:
    """An analysis of a store that `update` extends with the spans committed since."""

    def __init__(self) -> None:
        self.raw: pd.DataFrame | None = None      # the loaded spans, as the loader gave them
        self.analysis: Analysis | None = None
        self.paths: pd.DataFrame | None = None     # every flow's critical path
        self.last_batch = 0
        self.reanalyzed_spans = 0                  # spans analyzed by the last update

    def update(self, new: pd.DataFrame) -> Analysis:
        """Extend the analysis with `new` spans (from batches after `last_batch`)."""
        if new.empty and self.analysis is not None:
            self.reanalyzed_spans = 0
            return self.analysis
        if self.analysis is None:
            self.raw = new.reset_index(drop=True)
            self.analysis = analyze_spans(self.raw)
            self.paths = critical_paths(self.analysis)
            self.reanalyzed_spans = len(self.raw)
        else:
            self._extend(new)
        if len(new):
            self.last_batch = max(self.last_batch, int(new["batch_id"].max()))
        return self.analysis

    def _touched_traces(self, new: pd.DataFrame) -> set[str]:
        raw = self.raw
        traces = set(new["trace_id"])
        new_keys = set(new["trace_id"] + ":" + new["span_id"])
        targets = {link for links in new["links"] for link in links}
        old_keys = raw["trace_id"] + ":" + raw["span_id"]
        links_to_new = np.fromiter((any(link in new_keys for link in links) for links in raw["links"]),
                                   dtype=bool, count=len(raw))
        touched = (old_keys.isin(targets).to_numpy() | links_to_new
                   | raw["message_id"].isin(set(new["message_id"].dropna())).to_numpy()
                   | raw["business_key"].isin(set(new["business_key"].dropna())).to_numpy())
        return traces | set(raw.loc[touched, "trace_id"])

    def _extend(self, new: pd.DataFrame) -> None:
        old = self.analysis
        traces = self._touched_traces(new)
        flow_of_trace = old.spans.drop_duplicates("trace_id").set_index("trace_id")["flow_id"]
        flows = set(flow_of_trace.reindex(list(traces)).dropna())
        traces |= set(old.spans.loc[old.spans["flow_id"].isin(flows), "trace_id"])
        self.raw = pd.concat([self.raw, new], ignore_index=True)
        subset = self.raw[self.raw["trace_id"].isin(traces)]
        part = analyze_spans(subset)
        self.reanalyzed_spans = len(subset)
        keep = ~old.spans["flow_id"].isin(flows)
        spans = pd.concat([old.spans[keep], part.spans], ignore_index=True)
        edges = pd.concat([old.edges[~old.edges["flow_id"].isin(flows)], part.edges],
                          ignore_index=True)
        # Positions refer to rows of `spans`; rebuild them for the merged table.
        position = pd.Index(spans["key"]).get_indexer
        edges["src_pos"], edges["dst_pos"] = position(edges["src"]), position(edges["dst"])
        merged = pd.concat([old.flows[~old.flows["flow_id"].isin(flows)], part.flows],
                           ignore_index=True)
        analysis = Analysis(spans, edges, merged.drop(columns=["status", "missing_steps"]))
        analysis.flow_types = flow_types(analysis)
        _mark_incomplete(analysis)
        self.analysis = analysis
        self.paths = pd.concat([self.paths[~self.paths["flow_id"].isin(flows)],
                                critical_paths(part)], ignore_index=True)
