"""Check results as people read them (a line per check) and as scripts read them (JSON)."""

from __future__ import annotations

from tracekit.checks.evaluate import Result

SHOWN_OFFENDERS = 3


def lines(results: list[Result]) -> list[str]:
    """A line per check (✓ or ✗, its figures against their bounds); under a failed one, the
    flows to look at."""
    out = []
    for r in results:
        mark = "✓" if r.passed else "✗"
        shown = [o for o in r.outcomes if not o.passed] or list(r.outcomes)
        out.append(f"{mark} {r.check.name}: " + "; ".join(o.text for o in shown))
        if not r.passed and r.offenders:
            flows = list(dict.fromkeys(o.flow_id for o in r.offenders))
            more = len(flows) - SHOWN_OFFENDERS
            first = r.offenders[0]
            out.append("    look at: " + ", ".join(f"tracekit flow {f}" for f in flows[:SHOWN_OFFENDERS])
                       + (f" (+{more} more in --json)" if more > 0 else "")
                       + f"  e.g. {first.reason}")
    failed = sum(not r.passed for r in results)
    out.append(f"{len(results) - failed} of {len(results)} checks passed"
               + (f", {failed} failed" if failed else ""))
    return out


def as_json(results: list[Result], check_file: str, store: str, window: tuple[int, int]) -> dict:
    return {
        "check_file": check_file, "store": store, "window_ns": list(window), "no_data": False,
        "passed": all(r.passed for r in results),
        "checks": [{
            "name": r.check.name, "line": r.check.line, "subject": r.check.subject,
            "passed": r.passed, "selected": r.selected,
            "outcomes": [{"expectation": o.label, "measured": o.measured, "bound": o.bound,
                          "passed": o.passed, "text": o.text} for o in r.outcomes],
            "offenders": [{"flow_id": o.flow_id, "span_id": o.span_id, "reason": o.reason}
                          for o in r.offenders],
        } for r in results],
    }
