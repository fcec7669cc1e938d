"""Wording shared by the Markdown and HTML reports: times, numbers, figure references."""

from __future__ import annotations

import pandas as pd

from tracekit.report.model import Figure, Report


def when(ns: int) -> str:
    return pd.Timestamp(int(ns)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def clock(ns: int) -> str:
    return pd.Timestamp(int(ns)).strftime("%H:%M:%S.%f")[:-3]


def ms(value) -> str:
    return "–" if value is None else f"{value:,.1f} ms"


def rate(value) -> str:
    return "–" if value is None else f"{value:.1%}"


def share(part, whole) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def window_line(report: Report) -> str:
    how = {"given": "as given", "detected": "detected from shifts in error rates and latency",
           "searched": "the range searched (no shift found)", "flow": "the flow's start"}
    base = {"given": "as given", "before": "the same length just before the window",
            "none": "none"}
    w, b = report.window, report.baseline
    if w.how == "flow":
        return f"Flow started {when(w.start_ns)} UTC"
    text = f"Window: {when(w.start_ns)} – {when(w.end_ns)} UTC ({how.get(w.how, w.how)})"
    if b.how != "none":
        text += f"; baseline: {when(b.start_ns)} – {when(b.end_ns)} UTC ({base.get(b.how, b.how)})"
    return text


class References:
    """Numbers the report's figures in order, so each quoted value can point at its SQL."""

    def __init__(self, figures: tuple[Figure, ...]) -> None:
        self.number = {(f.text, f.column): i for i, f in enumerate(figures, 1)}
        self.queries: dict[str, int] = {}
        for f in figures:
            self.queries.setdefault(f.text, len(self.queries) + 1)

    def of(self, figure: Figure | None) -> str:
        if figure is None:
            return ""
        return f"Q{self.queries[figure.text]}"

    def appendix(self, figures: tuple[Figure, ...]) -> list[tuple[str, str, str]]:
        """The report's SQL appendix, each query once: (its number, the figures it gives with
        their values, the SQL), for every format to write out in its own way."""
        entries, seen = [], set()
        for f in figures:
            number = self.of(f)
            if number in seen:
                continue
            seen.add(number)
            names = "; ".join(g.name + ("" if not g.column else f" = {g.value}")
                              for g in figures if g.text == f.text)
            entries.append((number, names, f.text.rstrip()))
        return entries
