"""The report as Markdown: pasted into a ticket or a post-mortem."""

from __future__ import annotations

from tracekit.report.model import Report
from tracekit.report.wording import References, clock, ms, rate, share, when, window_line


def cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ") if value is not None else "–"


def _table(headers: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def render(report: Report) -> str:
    ref = References(report.figures)
    out = [f"# {report.title}", "", f"_{window_line(report)}. Store `{report.store}`, written "
           f"{when(report.generated_ns)} UTC. [Qn] points at the SQL that gives a figure (end of report)._",
           "", "## Summary", "", report.summary, ""]
    if report.no_data:
        return "\n".join(out)
    imp = report.impact
    if imp is not None:
        n = imp.flows.value or 0
        out += ["## Impact", "",
                f"- Flows started in the window: **{n}** [{ref.of(imp.flows)}]",
                f"- Failed: **{imp.failed.value}** ({share(imp.failed.value or 0, n)})",
                f"- Slow (slower than their workflow's baseline p95): **{imp.slow.value}** "
                f"({share(imp.slow.value or 0, n)})",
                f"- Degraded (errors handled inside, e.g. a retry that succeeded): {imp.degraded.value}",
                f"- Incomplete or still running: {imp.incomplete.value}", ""]
        if imp.affected_types:
            heading = "Affected flow types" if report.incident else \
                "Flow types that shifted (no cause found for them)"
            out += [f"**{heading}** [{ref.of(imp.types)}]", ""]
            out += _table(["flow type", "flows", "failed", "slow", "error rate (baseline)",
                           "p95 (baseline)"],
                          [[t.name, t.flows, t.failed, t.slow,
                            f"{rate(t.error_rate)} ({rate(t.baseline_error_rate)})",
                            f"{ms(t.p95_ms)} ({ms(t.baseline_p95_ms)})"] for t in imp.affected_types])
            out.append("")
        else:
            out += [f"No flow type's share of failed, degraded, incomplete or slow flows grew by 10 "
                    f"points or more [{ref.of(imp.types)}].", ""]
        if imp.operations.value:
            out += [f"**Affected services and endpoints** (failing spans) [{ref.of(imp.operations)}]", ""]
            out += _table(["service", "operation", "kind", "failing spans", "flows"],
                          [[r["service_name"], r["name"], r["kind"], r["error_spans"], r["flows"]]
                           for r in imp.operations.value])
            out.append("")
        if imp.slowed.value:
            out += [f"**Slower services and endpoints** (time on the critical path per flow) "
                    f"[{ref.of(imp.slowed)}]", ""]
            out += _table(["service", "operation", "baseline", "window"],
                          [[r["service_name"], r["name"], ms(r["baseline_ms_per_flow"]),
                            ms(r["window_ms_per_flow"])] for r in imp.slowed.value])
            out.append("")
    if report.timeline:
        out += ["## Timeline", ""]
        out += _table(["time (UTC)", "event", "SQL"],
                      [[when(e.at_ns), e.text, ref.of(e.figure)] for e in report.timeline])
        out.append("")
    if report.other_windows:
        out += ["Other shifts in the range searched: " + ", ".join(
            f"{when(w.start_ns)} – {clock(w.end_ns)}" for w in report.other_windows[:5]), ""]
    out += _causes(report, ref)
    out += _different(report, ref)
    out += _path(report, ref)
    if report.exemplar is not None:
        ex = report.exemplar
        out += ["## Sequence diagram of the exemplar flow", "",
                f"Flow `{ex.flow_id}` ({ex.type_name or 'no type'}, {ex.business_key or 'no business key'}), "
                f"{ex.status}, {ms(ex.duration_ms)}.", "", "```mermaid", ex.mermaid.rstrip(), "```", ""]
        if ex.attributes:
            which = "failing span" if ex.origin else "root span"
            out += [f"Attributes of the {which} as stored (masked values stay masked):", ""]
            out += _table(["attribute", "value"], [[f"`{k}`", v] for k, v in sorted(ex.attributes.items())])
            out.append("")
    out += ["## Correlated logs", ""]
    if report.logs:
        out += [f"Warnings and errors of the window's flows, by message pattern [{ref.of(report.logs_figure)}]:", ""]
        out += _table(["count", "severity", "services", "pattern", "example"],
                      [[p.count, p.severity, ", ".join(p.services), p.pattern, p.example]
                       for p in report.logs])
    else:
        out.append(f"No warning or error logs in the window's flows [{ref.of(report.logs_figure)}].")
    out.append("")
    out += ["## Limits of this report", ""]
    if report.limits:
        out += [f"- {lim.text}" + (f" [{ref.of(lim.figure)}]" if lim.figure else "") for lim in report.limits]
    else:
        out.append("- None found: no orphan spans, clock-skew corrections, dropped data or incomplete flows.")
    out += ["", "## SQL", "",
            "Each query runs as is with `tracekit sql --db STORE \"...\"` and returns the figures quoted.", ""]
    for number, names, sql in ref.appendix(report.figures):
        out += [f"**{number}** — {names}", "", "```sql", sql, "```", ""]
    return "\n".join(out)


def _different(report: Report, ref: References) -> list[str]:
    if report.differences_figure is None:
        return []
    out = ["## What is different", ""]
    if not report.differences:
        return out + ["No span or resource attribute value is over-represented in the failing and "
                      f"slow flows [{ref.of(report.differences_figure)}].", ""]
    out += [f"Attribute values over-represented in the window's failing and slow flows against "
            f"the other flows of the window and the baseline [{ref.of(report.differences_figure)}]:", ""]
    out += _table(["attribute", "value", "from", "failing or slow flows", "other flows"],
                  [[f"`{d.attribute}`", d.value, d.source, f"{d.flows} of {d.of_flows} ({d.share:.0%})",
                    f"{d.other_flows} of {d.of_other} ({d.other_share:.0%})"] for d in report.differences])
    return out + [""]


def _causes(report: Report, ref: References) -> list[str]:
    out = ["## Root cause", ""]
    if not report.suspects:
        out += ["The flow has no failing span." if report.flow_id is not None else
                "No service or operation explains the window's failures or latency better than the "
                "baseline does.", ""]
        return out
    if report.flow_id is not None:      # one flow: its failure origin, no ranking
        for s in report.suspects:
            out.append(f"Likely cause: **{s.service} {s.operation}**")
            out += [f"- {e.text}" + (f" [{ref.of(e.figure)}]" if e.figure else "") for e in s.evidence]
        out.append("")
        return out
    out += _table(["#", "service", "operation", "score", "flows failing here (baseline)",
                   "critical path per flow (baseline → window)", "exemplar flows"],
                  [[s.rank, s.service, s.operation, f"{s.score:.2f}",
                    f"{s.failed_flows} ({s.baseline_failed_flows})",
                    f"{ms(s.baseline_ms)} → {ms(s.window_ms)}",
                    ", ".join(f"`{e}`" for e in s.exemplars)] for s in report.suspects])
    out.append("")
    for s in report.suspects:
        if not s.evidence:
            continue
        out.append(f"**{s.rank}. {s.service} {s.operation}**")
        out += [f"- {e.text}" + (f" [{ref.of(e.figure)}]" if e.figure else "") for e in s.evidence]
        out.append("")
    if report.exceptions is not None and report.exceptions.value:
        out += [f"Exceptions in the window's flows [{ref.of(report.exceptions)}]:", ""]
        out += _table(["count", "flows", "service", "operation", "type", "message pattern", "example flow"],
                      [[e["count"], e["flows"], e["service_name"], e["name"], e["type"], e["pattern"],
                        f"`{e['example_flow']}`"] for e in report.exceptions.value])
        out.append("")
    if report.flow_id is None:
        out += ["The ranking (score, failure share, critical-path growth) is the analyzer's; reproduce it with", "",
                "```sh", report.causes_command, "```", ""]
    return out


def _path(report: Report, ref: References) -> list[str]:
    p = report.path
    if p is None:
        return []
    out = ["## Critical path: exemplar against a healthy flow", ""]
    if p.healthy_flow is None:
        out += [f"Flow `{p.exemplar_flow}` ({p.exemplar_status}, {ms(p.exemplar_ms)}); no healthy flow "
                f"of its kind to compare with [{ref.of(p.figure)}].", ""]
    else:
        out += [f"Exemplar `{p.exemplar_flow}` ({p.exemplar_status}, {ms(p.exemplar_ms)}) against "
                f"healthy `{p.healthy_flow}` ({ms(p.healthy_ms)}) [{ref.of(p.figure)}]."]
        if p.grew is not None and p.grew.delta_ms > 0:
            g = p.grew
            what = "broker wait before " if g.segment == "broker_wait" else ""
            out += ["", f"**{what}{g.service} {g.name}** grew most: {ms(g.healthy_ms)} → "
                    f"{ms(g.exemplar_ms)} (+{g.delta_ms:,.1f} ms)."]
        out.append("")
    out += _table(["step", "segment", "exemplar", "healthy", "change"],
                  [[f"{s.service} {s.name}", s.segment, ms(s.exemplar_ms), ms(s.healthy_ms),
                    f"{s.delta_ms:+,.1f} ms"] for s in p.steps[:15]])
    out.append("")
    return out
