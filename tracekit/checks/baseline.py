"""Edge baselines: each workflow's service edges in a known-good window, written to a JSON file
that `edges:` checks compare a later window against."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tracekit import queries
from tracekit.checks.spec import CheckFileError
from tracekit.errors import TracekitError

FORMAT = "tracekit-edge-baseline"
VERSION = 1

Edge = tuple[str, str]                 # (from, to): a service or 'broker:<destination>'
Workflow = tuple[str, str]             # (root service, root operation)


@dataclass(frozen=True)
class Taken:
    """An edge the flows of a window took: how many flows, and one of them."""

    flows: int
    example_flow: str


def window_edges(store, window: tuple[int, int],
                 type_ids: tuple[str, ...] | None) -> dict[Workflow, dict[Edge, Taken]]:
    """Each workflow of the flows started in `window` (of `type_ids`, None: all), with its
    edges; a workflow whose flows made no edge maps to no edges."""
    params = {"start_ns": window[0], "end_ns": window[1],
              "type_ids": list(type_ids) if type_ids is not None else None}
    out: dict[Workflow, dict[Edge, Taken]] = {
        (r["root_service"], r["root_name"]): {}
        for r in store.arrow(queries.load("check/workflows"), params).to_pylist()}
    for r in store.arrow(queries.load("check/edges"), params).to_pylist():
        out.setdefault((r["root_service"], r["root_name"]), {})[(r["src"], r["dst"])] = Taken(
            r["flows"], r["example_flow"])
    return out


def write(path: Path, edges: dict[Workflow, dict[Edge, Taken]], store: Path,
          window: tuple[int, int]) -> None:
    """The baseline file: one workflow after another, an edge per line (easy to review in a
    diff)."""
    lines = ["{", f'  "format": "{FORMAT}", "version": {VERSION},',
             f'  "store": {json.dumps(str(store))}, "window_ns": [{window[0]}, {window[1]}],',
             '  "workflows": [']
    for i, ((service, operation), taken) in enumerate(sorted(edges.items())):
        lines.append(f'    {{"root_service": {json.dumps(service)}, '
                     f'"root_operation": {json.dumps(operation)}, "edges": [')
        rows = [f"      {json.dumps(list(edge))}" for edge in sorted(taken)]
        lines.append(",\n".join(rows))
        lines.append("    ]}" + ("," if i < len(edges) - 1 else ""))
    lines += ["  ]", "}"]
    try:
        path.write_text("\n".join(line for line in lines if line) + "\n", encoding="utf-8")
    except OSError as exc:
        raise TracekitError(f"cannot write the baseline: {exc}") from None


def read(path: Path) -> dict[Workflow, frozenset[Edge]]:
    """Each workflow's edges from a baseline file."""
    advice = f"write one with `tracekit check --write-baseline {path}` over a known-good store"
    try:
        document = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise CheckFileError(f"cannot read the edge baseline: {exc}; {advice}") from None
    except ValueError as exc:
        raise CheckFileError(f"{path} is not JSON ({exc}); {advice}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckFileError(f"{path} is not an edge baseline; {advice}")
    out: dict[Workflow, frozenset[Edge]] = {}
    try:
        for workflow in document["workflows"]:
            key = (str(workflow["root_service"]), str(workflow["root_operation"]))
            out[key] = frozenset((str(a), str(b)) for a, b in workflow["edges"])
    except (KeyError, TypeError, ValueError):
        raise CheckFileError(f"{path}: a workflow lacks root_service, root_operation or edges "
                             f"([from, to] pairs); {advice}") from None
    return out

