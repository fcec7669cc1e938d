"""The report as one self-contained HTML file: the Markdown's content, inline CSS, and charts
as inline SVG (error rate and p95 over time, critical-path bars, the exemplar's sequence
diagram drawn from its Mermaid source). No script, font or image is fetched: it opens
offline."""

from __future__ import annotations

from html import escape

from tracekit.report.mermaid import statements
from tracekit.report.model import Bucket, PathComparison, Report
from tracekit.report.wording import References, clock, ms, rate, share, when, window_line

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#1d232a;padding:0 1em}
h1{font-size:1.5em}h2{margin-top:1.8em;border-bottom:1px solid #d5dbe1;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #d5dbe1;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f4f7}code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
pre{background:#f6f8fa;padding:.8em;overflow:auto;border-radius:4px}.muted{color:#5b6670}
.ref{font-size:11px;color:#5b6670}.wide{overflow-x:auto}.bad{color:#b42318;font-weight:600}svg{display:block;margin:.6em 0}
"""


def _esc(value) -> str:
    return escape("–" if value is None else str(value))


def _table(headers: list[str], rows: list[list], raw_columns: frozenset = frozenset()) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{v if i in raw_columns else _esc(v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _line_chart(buckets: tuple[Bucket, ...], value, label: str, fmt, report: Report,
                color: str) -> str:
    points = [(b.start_ns, value(b)) for b in buckets if value(b) is not None]
    if len(points) < 2:
        return f"<p class=muted>{_esc(label)}: too few points to draw.</p>"
    w, h, left, bottom = 900, 180, 60, 24
    x0, x1 = points[0][0], points[-1][0]
    top = max(v for _, v in points) or 1.0

    def x(t):
        return left + (t - x0) / max(x1 - x0, 1) * (w - left - 10)

    def y(v):
        return 10 + (1 - v / top) * (h - bottom - 10)

    win = report.window
    band = ""
    if win.end_ns > x0 and win.start_ns < x1:
        a, b = x(max(win.start_ns, x0)), x(min(win.end_ns, x1))
        band = f'<rect x="{a:.1f}" y="10" width="{max(b - a, 1):.1f}" height="{h - bottom - 10}" fill="#fde2e1"/>'
    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
    ticks = "".join(
        f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{_esc(fmt(v))}</text>'
        f'<line x1="{left}" x2="{w - 10}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e4e7eb"/>'
        for v in (0, top / 2, top))
    # The first and last labels are anchored at their ends so that they stay inside the chart.
    times = "".join(f'<text x="{x(t):.1f}" y="{h - 6}" text-anchor="{anchor}" font-size="11">{_esc(clock(t)[:8])}</text>'
                    for t, anchor in ((x0, "start"), ((x0 + x1) // 2, "middle"), (x1, "end")))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
            f'aria-label="{_esc(label)}"><title>{_esc(label)}</title>{band}{ticks}{times}'
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{line}"/></svg>')


def _path_bars(p: PathComparison) -> str:
    steps = [s for s in p.steps if max(s.exemplar_ms, s.healthy_ms) > 0][:12]
    if not steps:
        return ""
    top = max(max(s.exemplar_ms, s.healthy_ms) for s in steps) or 1.0
    row_h, label_w, w = 34, 330, 900
    h = row_h * len(steps) + 30
    parts = [f'<text x="{label_w}" y="14" font-size="11" fill="#b42318">■ exemplar</text>'
             f'<text x="{label_w + 90}" y="14" font-size="11" fill="#2e7d32">■ healthy</text>']
    for i, s in enumerate(steps):
        y = 24 + i * row_h
        name = ("wait → " if s.segment == "broker_wait" else "") + f"{s.service} {s.name}"
        ew = s.exemplar_ms / top * (w - label_w - 90)
        hw = s.healthy_ms / top * (w - label_w - 90)
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="12">{_esc(name[:48])}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{ew:.1f}" height="13" fill="#e5484d"/>'
                     f'<text x="{label_w + ew + 4:.1f}" y="{y + 11}" font-size="11">{_esc(ms(s.exemplar_ms))}</text>'
                     f'<rect x="{label_w}" y="{y + 15}" width="{hw:.1f}" height="13" fill="#46a758"/>'
                     f'<text x="{label_w + hw + 4:.1f}" y="{y + 26}" font-size="11">{_esc(ms(s.healthy_ms))}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
            f'aria-label="critical path, exemplar against healthy"><title>critical path</title>{"".join(parts)}</svg>')


def _sequence_svg(mermaid: str) -> str:
    """The exemplar's sequence diagram drawn from its Mermaid source: a column per
    participant, a row per message or note; dashed arrows are answers, red ones failures."""
    participants, steps = statements(mermaid)
    if not participants:
        return ""
    order = {ident: i for i, ident in enumerate(participants)}
    col, row, top = 150, 26, 44
    w, h = 20 + col * len(order), top + row * len(steps) + 16

    def x(ident: str) -> float:
        return 10 + col * order[ident] + col / 2

    parts = []
    for ident, name in participants.items():
        parts.append(f'<rect x="{x(ident) - 68:.0f}" y="6" width="136" height="24" rx="3" fill="#eef1f5" '
                     f'stroke="#9aa5b1"/><text x="{x(ident):.0f}" y="22" text-anchor="middle" '
                     f'font-size="12">{_esc(name[:22])}</text>'
                     f'<line x1="{x(ident):.0f}" x2="{x(ident):.0f}" y1="30" y2="{h - 6}" '
                     f'stroke="#c8ced6" stroke-dasharray="3 3"/>')
    for i, s in enumerate(steps):
        y = top + i * row + 12
        if s.kind == "note":
            parts.append(f'<rect x="{x(s.src) - 140:.0f}" y="{y - 12}" width="280" height="18" '
                         f'fill="#fff5c2" stroke="#d9b300"/><text x="{x(s.src):.0f}" y="{y + 1}" '
                         f'text-anchor="middle" font-size="11">{_esc(s.text[:50])}</text>')
            continue
        x1, x2 = x(s.src), x(s.dst)
        if x1 == x2:
            x2 = x1 + 40
        failed = "x" in s.arrow
        color = "#b42318" if failed else "#1d232a"
        dash = ' stroke-dasharray="5 3"' if s.arrow.startswith("--") else ""
        step = 7 if x2 > x1 else -7
        head = (f'<text x="{x2 - step / 2:.0f}" y="{y + 4}" text-anchor="middle" font-size="13" '
                f'fill="{color}">×</text>' if failed else
                f'<polygon points="{x2:.0f},{y} {x2 - step:.0f},{y - 4} {x2 - step:.0f},{y + 4}" fill="{color}"/>')
        chars = max(int(abs(x2 - x1) / 6.2), 12)
        parts.append(f'<line x1="{x1:.0f}" x2="{x2 - (step if failed else 0):.0f}" y1="{y}" y2="{y}" '
                     f'stroke="{color}" stroke-width="1.3"{dash}/>{head}'
                     f'<text x="{(x1 + x2) / 2:.0f}" y="{y - 4}" text-anchor="middle" font-size="11" '
                     f'fill="{color}">{_esc(s.text[:chars])}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
            f'aria-label="sequence diagram"><title>sequence diagram</title>{"".join(parts)}</svg>')


def render(report: Report) -> str:
    ref = References(report.figures)

    def r(figure) -> str:
        if figure is None:
            return ""
        number = _esc(ref.of(figure))
        return f' <span class=ref>[<a href="#{number}">{number}</a>]</span>'

    out = ["<!doctype html>", "<html lang=en><head><meta charset=utf-8>",
           f"<title>{_esc(report.title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{_esc(report.title)}</h1>",
           f"<p class=muted>{_esc(window_line(report))}. Store <code>{_esc(report.store)}</code>, written "
           f"{_esc(when(report.generated_ns))} UTC. [Qn] points at the SQL that gives a figure.</p>",
           "<h2>Summary</h2>", f"<p>{_esc(report.summary)}</p>"]
    if report.no_data:
        return "\n".join(out + ["</body></html>"]) + "\n"
    imp = report.impact
    if imp is not None:
        n = imp.flows.value or 0
        out += ["<h2>Impact</h2><ul>",
                f"<li>Flows started in the window: <b>{_esc(n)}</b>{r(imp.flows)}</li>",
                f"<li>Failed: <b class=bad>{_esc(imp.failed.value)}</b> ({share(imp.failed.value or 0, n)})</li>",
                f"<li>Slow (slower than their workflow's baseline p95): <b>{_esc(imp.slow.value)}</b> "
                f"({share(imp.slow.value or 0, n)})</li>",
                f"<li>Degraded (errors handled inside): {_esc(imp.degraded.value)}</li>",
                f"<li>Incomplete or still running: {_esc(imp.incomplete.value)}</li></ul>"]
        if imp.affected_types:
            heading = "Affected flow types" if report.incident else \
                "Flow types that shifted (no cause found for them)"
            out.append(f"<p><b>{heading}</b>{r(imp.types)}</p>")
            out.append(_table(["flow type", "flows", "failed", "slow", "error rate (baseline)", "p95 (baseline)"],
                              [[t.name, t.flows, t.failed, t.slow,
                                f"{rate(t.error_rate)} ({rate(t.baseline_error_rate)})",
                                f"{ms(t.p95_ms)} ({ms(t.baseline_p95_ms)})"] for t in imp.affected_types]))
        else:
            out.append(f"<p>No flow type's share of failed, degraded, incomplete or slow flows grew "
                       f"by 10 points or more{r(imp.types)}.</p>")
        if imp.operations.value:
            out.append(f"<p><b>Affected services and endpoints</b> (failing spans){r(imp.operations)}</p>")
            out.append(_table(["service", "operation", "kind", "failing spans", "flows"],
                              [[o["service_name"], o["name"], o["kind"], o["error_spans"], o["flows"]]
                               for o in imp.operations.value]))
        if imp.slowed.value:
            out.append(f"<p><b>Slower services and endpoints</b> (time on the critical path per "
                       f"flow){r(imp.slowed)}</p>")
            out.append(_table(["service", "operation", "baseline", "window"],
                              [[o["service_name"], o["name"], ms(o["baseline_ms_per_flow"]),
                                ms(o["window_ms_per_flow"])] for o in imp.slowed.value]))
    out.append(f"<h2>Error rate and p95 over time</h2><p class=muted>Flows by their start, "
               f"{report.bucket_ns // 10**9} s buckets; the window shaded{r(report.buckets_figure)}.</p>")
    out.append(_line_chart(report.buckets, lambda b: b.error_rate, "error rate (failed flows)",
                           lambda v: f"{v:.0%}", report, "#e5484d"))
    out.append(_line_chart(report.buckets, lambda b: b.p95_ms, "p95 flow duration (ms)",
                           lambda v: f"{v:,.0f} ms", report, "#3e63dd"))
    if report.timeline:
        out.append("<h2>Timeline</h2>")
        out.append(_table(["time (UTC)", "event", "SQL"],
                          [[when(e.at_ns), e.text, ref.of(e.figure)] for e in report.timeline]))
    out.append("<h2>Root cause</h2>")
    if not report.suspects:
        out.append("<p>The flow has no failing span.</p>" if report.flow_id is not None else
                   "<p>No service or operation explains the window's failures or latency better "
                   "than the baseline does.</p>")
    elif report.flow_id is not None:      # one flow: its failure origin, no ranking
        for s in report.suspects:
            out.append(f"<p>Likely cause: <b>{_esc(s.service)} {_esc(s.operation)}</b></p><ul>"
                       + "".join(f"<li>{_esc(e.text)}{r(e.figure)}</li>" for e in s.evidence) + "</ul>")
    else:
        out.append(_table(["#", "service", "operation", "score", "flows failing here (baseline)",
                           "critical path per flow (baseline → window)", "exemplar flows"],
                          [[s.rank, s.service, s.operation, f"{s.score:.2f}",
                            f"{s.failed_flows} ({s.baseline_failed_flows})",
                            f"{ms(s.baseline_ms)} → {ms(s.window_ms)}", ", ".join(s.exemplars)]
                           for s in report.suspects]))
        for s in report.suspects:
            if s.evidence:
                out.append(f"<p><b>{s.rank}. {_esc(s.service)} {_esc(s.operation)}</b></p><ul>"
                           + "".join(f"<li>{_esc(e.text)}{r(e.figure)}</li>" for e in s.evidence) + "</ul>")
        if report.exceptions is not None and report.exceptions.value:
            out.append(f"<p>Exceptions in the window's flows{r(report.exceptions)}</p>")
            out.append(_table(["count", "flows", "service", "operation", "type", "message pattern", "example flow"],
                              [[e["count"], e["flows"], e["service_name"], e["name"], e["type"],
                                e["pattern"], e["example_flow"]] for e in report.exceptions.value]))
        if report.flow_id is None:
            out.append(f"<p>The ranking is the analyzer's; reproduce it with</p><pre>{_esc(report.causes_command)}</pre>")
    if report.differences_figure is not None:
        out.append("<h2>What is different</h2>")
        if report.differences:
            out.append("<p>Attribute values over-represented in the window's failing and slow flows "
                       f"against the other flows of the window and the baseline{r(report.differences_figure)}</p>")
            out.append(_table(["attribute", "value", "from", "failing or slow flows", "other flows"],
                              [[d.attribute, d.value, d.source, f"{d.flows} of {d.of_flows} ({d.share:.0%})",
                                f"{d.other_flows} of {d.of_other} ({d.other_share:.0%})"]
                               for d in report.differences]))
        else:
            out.append("<p>No span or resource attribute value is over-represented in the failing and "
                       f"slow flows{r(report.differences_figure)}.</p>")
    p = report.path
    if p is not None:
        out.append("<h2>Critical path: exemplar against a healthy flow</h2>")
        if p.healthy_flow is None:
            out.append(f"<p>Flow <code>{_esc(p.exemplar_flow)}</code> ({_esc(p.exemplar_status)}, "
                       f"{ms(p.exemplar_ms)}); no healthy flow of its kind to compare with{r(p.figure)}.</p>")
        else:
            out.append(f"<p>Exemplar <code>{_esc(p.exemplar_flow)}</code> ({_esc(p.exemplar_status)}, "
                       f"{ms(p.exemplar_ms)}) against healthy <code>{_esc(p.healthy_flow)}</code> "
                       f"({ms(p.healthy_ms)}){r(p.figure)}.</p>")
            if p.grew is not None and p.grew.delta_ms > 0:
                g = p.grew
                what = "broker wait before " if g.segment == "broker_wait" else ""
                out.append(f"<p><b>{_esc(what + g.service + ' ' + g.name)}</b> grew most: "
                           f"{ms(g.healthy_ms)} → {ms(g.exemplar_ms)} (+{g.delta_ms:,.1f} ms).</p>")
        out.append(_path_bars(p))
    ex = report.exemplar
    if ex is not None:
        out.append("<h2>Sequence diagram of the exemplar flow</h2>")
        out.append(f"<p>Flow <code>{_esc(ex.flow_id)}</code> ({_esc(ex.type_name)}, "
                   f"{_esc(ex.business_key)}), {_esc(ex.status)}, {ms(ex.duration_ms)}.</p>")
        out.append(f"<div class=wide>{_sequence_svg(ex.mermaid)}</div>")
        out.append("<details><summary>Mermaid source (paste into any Mermaid renderer)</summary>"
                   f"<pre class=mermaid>{_esc(ex.mermaid)}</pre></details>")
        if ex.attributes:
            which = "failing span" if ex.origin else "root span"
            out.append(f"<p>Attributes of the {which} as stored (masked values stay masked):</p>")
            out.append(_table(["attribute", "value"], [[k, v] for k, v in sorted(ex.attributes.items())]))
    out.append("<h2>Correlated logs</h2>")
    if report.logs:
        out.append(f"<p>Warnings and errors of the window's flows, by message pattern{r(report.logs_figure)}</p>")
        out.append(_table(["count", "severity", "services", "pattern", "example"],
                          [[lp.count, lp.severity, ", ".join(lp.services), lp.pattern, lp.example]
                           for lp in report.logs]))
    else:
        out.append(f"<p>No warning or error logs in the window's flows{r(report.logs_figure)}.</p>")
    out.append("<h2>Limits of this report</h2><ul>")
    if report.limits:
        out += [f"<li>{_esc(lim.text)}{r(lim.figure)}</li>" for lim in report.limits]
    else:
        out.append("<li>None found: no orphan spans, clock-skew corrections, dropped data or incomplete flows.</li>")
    out.append("</ul><h2>SQL</h2><p>Each query runs as is with <code>tracekit sql --db STORE \"...\"</code> "
               "and returns the figures quoted.</p>")
    for number, names, sql in ref.appendix(report.figures):
        out.append(f"<p id={number}><b>{number}</b> — {_esc(names)}</p><pre>{_esc(sql)}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
