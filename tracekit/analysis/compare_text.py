"""A comparison of two flows as `tracekit compare` prints it: text, Markdown or a JSON dict."""

from __future__ import annotations

from tracekit.analysis.compare import (AttributeChange, Comparison, ErrorChange, ErrorState,
                                       FlowSide, Lone, PathChange, Timing)
from tracekit.plurals import counted

SHOWN = 10            # lines per section in text and Markdown (--json has them all)
NOISE_MS = 0.05       # time changes below this are not listed


def _flow(side: FlowSide) -> str:
    parts = [side.status or "?", f"{side.duration_ns / 1e6:,.1f} ms"]
    if side.type_name:
        parts.append(f"type {side.type_name}")
    if side.business_key:
        parts.append(side.business_key)
    return f"{side.flow_id} ({', '.join(parts)})"


def _step(path: tuple[str, ...]) -> str:
    """A step's label, with its parent's when the label alone could be several steps."""
    return path[-1] if len(path) < 2 else f"{path[-1]}  (under {path[-2]})"


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _signed(value: float) -> str:
    return f"{value:+,.1f}"


def _error(state: ErrorState | None, present: bool) -> str:
    if not present:
        return "not there"
    return "no error" if state is None else state.summary


def _lines(c: Comparison) -> dict[str, list]:
    """What each section lists, in order, noise left out."""
    return {
        "errors": list(c.errors),
        "only_in_a": list(c.only_in_a),
        "only_in_b": list(c.only_in_b),
        "timings": [t for t in c.timings
                    if abs(t.self_delta_ms) >= NOISE_MS or abs(t.delta_ms) >= NOISE_MS],
        "critical_path": [p for p in c.critical_path if p.where != "both" or abs(p.delta_ms) >= NOISE_MS],
        "attributes": list(c.attributes),
    }


def _path_change(p: PathChange) -> str:
    what = ("broker wait before " if p.segment == "broker_wait" else "") + _step(p.path)
    if p.where == "a":
        return f"only on A's: {what}  {_ms(p.a_ms)} ms"
    if p.where == "b":
        return f"only on B's: {what}  {_ms(p.b_ms)} ms"
    return f"{what}  {_ms(p.a_ms)} vs {_ms(p.b_ms)} ms ({_signed(p.delta_ms)})"


def _lone(lone: Lone) -> str:
    below = f"  (and {counted(lone.below, 'step')} below)" if lone.below else ""
    error = "  ✗ failed" if lone.step.error else ""
    return f"{_step(lone.path)}  {_ms(lone.step.duration_ns / 1e6)} ms{below}{error}"


def _timing(t: Timing) -> str:
    return (f"{_step(t.path)}  self {_ms(t.a_self_ms)} vs {_ms(t.b_self_ms)} ms "
            f"({_signed(t.self_delta_ms)}), duration {_ms(t.a_ms)} vs {_ms(t.b_ms)} ms "
            f"({_signed(t.delta_ms)})")


def _attribute(a: AttributeChange) -> str:
    return f"{_step(a.path)}  {a.key}: {a.a if a.a is not None else '-'} vs {a.b if a.b is not None else '-'}"


def _error_line(e: ErrorChange) -> str:
    start = "  ← A's failure starts here" if e.a_starts else ""
    return f"{_step(e.path)}  A: {_error(e.a, e.a_present)}  B: {_error(e.b, e.b_present)}{start}"


SECTIONS = (
    ("errors", "Errors that differ (in the order they happened)", _error_line),
    ("only_in_a", "Steps only in A (each with the steps below it)", _lone),
    ("only_in_b", "Steps only in B (each with the steps below it)", _lone),
    ("timings", "Time of the aligned steps, the largest self-time change first (A vs B)", _timing),
    ("critical_path", "Critical path: steps on one path only, then the largest changes", _path_change),
    ("attributes", "Attributes that differ on aligned steps (ids and times left out)", _attribute),
)


def headline(c: Comparison, picked: str | None = None) -> list[str]:
    lines = [f"A: flow {_flow(c.a)}", f"B: flow {_flow(c.b)}"]
    if picked:
        lines.append(f"   B picked as {picked}")
    aligned = sum(1 for p in c.pairs if p.a is not None and p.b is not None)
    delta = (c.a.duration_ns - c.b.duration_ns) / 1e6
    lines.append(f"{counted(aligned, 'step')} aligned, {len(c.a.steps) - aligned:,} only in A, "
                 f"{len(c.b.steps) - aligned:,} only in B; A took {_ms(abs(delta))} ms "
                 f"{'more' if delta >= 0 else 'less'}")
    return lines


def sections(c: Comparison, shown: int = SHOWN) -> list[tuple[str, str, list[str]]]:
    """(name, title, lines) of each section: its first `shown` differences, and how many
    more there are."""
    listed = _lines(c)
    out = []
    for name, title, line in SECTIONS:
        items = listed[name]
        more = [f"… {len(items) - shown:,} more (--json has them all)"] if len(items) > shown else []
        out.append((name, title, [line(item) for item in items[:shown]] + more))
    return out


def text(c: Comparison, picked: str | None = None) -> str:
    out = headline(c, picked)
    for _, title, lines in sections(c):
        out += ["", f"{title}:" + ("" if lines else " none")]
        out += ["  " + line for line in lines]
    return "\n".join(out) + "\n"


def _md(value: str) -> str:
    return value.replace("|", "\\|")


def markdown(c: Comparison, picked: str | None = None) -> str:
    out = [f"# Flow {c.a.flow_id} compared with {c.b.flow_id}", ""]
    out += [f"- {_md(line.strip())}" for line in headline(c, picked)] + [""]
    for _, title, lines in sections(c):
        out += [f"## {title}", ""] + ([f"- {_md(line)}" for line in lines] or ["None."]) + [""]
    return "\n".join(out)


def _side(side: FlowSide) -> dict:
    return {"flow_id": side.flow_id, "status": side.status, "duration_ms": side.duration_ns / 1e6,
            "type": side.type_name, "business_key": side.business_key, "steps": len(side.steps)}


def _state(state: ErrorState | None) -> dict | None:
    return None if state is None else {"status": state.status, "message": state.message,
                                       "exception": state.exception, "error_log": state.error_log}


def as_dict(c: Comparison, picked: str | None = None) -> dict:
    """Every difference, with each step's path from the top of its flow."""
    def lone(x: Lone) -> dict:
        trace_id, _, span_id = x.step.key.partition(":")
        return {"path": list(x.path), "step": x.path[-1], "trace_id": trace_id,
                "span_id": span_id, "duration_ms": x.step.duration_ns / 1e6,
                "error": x.step.error, "steps_below": x.below}

    return {
        "a": _side(c.a), "b": _side(c.b), "b_picked": picked,
        "errors": [{"path": list(e.path), "step": e.path[-1], "a": _state(e.a), "b": _state(e.b),
                    "in_a": e.a_present, "in_b": e.b_present, "a_starts_here": e.a_starts}
                   for e in c.errors],
        "only_in_a": [lone(x) for x in c.only_in_a],
        "only_in_b": [lone(x) for x in c.only_in_b],
        "timings": [{"path": list(t.path), "step": t.path[-1], "a_ms": t.a_ms, "b_ms": t.b_ms,
                     "delta_ms": t.delta_ms, "a_self_ms": t.a_self_ms, "b_self_ms": t.b_self_ms,
                     "self_delta_ms": t.self_delta_ms} for t in c.timings],
        "critical_path": [{"path": list(p.path), "step": p.path[-1], "segment": p.segment,
                           "on": p.where, "a_ms": p.a_ms, "b_ms": p.b_ms, "delta_ms": p.delta_ms}
                          for p in c.critical_path],
        "attributes": [{"path": list(a.path), "step": a.path[-1], "key": a.key, "a": a.a, "b": a.b}
                       for a in c.attributes],
    }
