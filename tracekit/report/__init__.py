"""Incident reports: what broke, since when, what it affected, the likely root cause with
its evidence, the critical path against a healthy flow, the logs that matter, and the SQL
behind every figure; as Markdown, self-contained HTML or JSON.

    from tracekit.report import build, render
    report = build(store, window=(start_ns, end_ns))
    print(render(report, "md"))
"""

from __future__ import annotations

FORMATS = ("md", "html", "json")


def build(store, **options):
    """The report of `store` (see tracekit.report.assemble.build for the options)."""
    # The builder lives in `assemble`: a submodule named `build` would replace this function
    # as the package attribute once imported.
    from tracekit.report.assemble import build as _build

    return _build(store, **options)


def render(report, fmt: str) -> str:
    """`report` as text: 'md' (Markdown), 'html' (one self-contained file) or 'json'."""
    if fmt == "md":
        from tracekit.report.markdown import render as to_text
    elif fmt == "html":
        from tracekit.report.html import render as to_text
    elif fmt == "json":
        from tracekit.report.as_json import render as to_text
    else:
        raise ValueError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    return to_text(report)


__all__ = ["FORMATS", "build", "render"]
