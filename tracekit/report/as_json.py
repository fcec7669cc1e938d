"""The report as JSON, for tools: the same facts as the Markdown, every figure with its SQL."""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd

from tracekit.report.model import Report


def _default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def data(report: Report) -> dict:
    out = asdict(report)
    for key in ("window", "baseline"):
        out[key]["start"] = str(pd.Timestamp(out[key]["start_ns"]))
        out[key]["end"] = str(pd.Timestamp(out[key]["end_ns"]))
    if report.path is not None:
        for step, source in zip(out["path"]["steps"], report.path.steps):
            step["delta_ms"] = round(source.delta_ms, 3)
        if report.path.grew is not None:
            out["path"]["grew"]["delta_ms"] = round(report.path.grew.delta_ms, 3)
    return out


def render(report: Report) -> str:
    return json.dumps(data(report), default=_default, indent=2) + "\n"
