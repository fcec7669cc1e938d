"""Two flows side by side: their steps aligned, and what differs between them.

Steps align by service and operation (and the callee, for a client or a producer) under
aligned parents, the n-th repeat of a step (a loop, a retry) with the n-th of the other flow.
What differs: steps only in one flow, time (duration and self time), the critical path, the
attributes of aligned steps (ids and times left out) and the errors. A pure function of the
two flows (`FlowSide`, read by `flow_sides.read_pair`); `a` is the flow asked about, `b` the
one it is measured against, and every difference is a − b.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field

from tracekit.analysis import DEFAULT_BUSINESS_KEYS

SPAN, WAIT = "span", "broker_wait"


@dataclass(frozen=True)
class Step:
    """One span of a flow as the comparison reads it. `parent`: the step it runs under (its
    call parent, or for a consumer the producer it joined); `target`: whom a client or
    producer called (peer service, destination or URL path), when it says."""

    key: str
    parent: str | None
    service: str
    name: str
    start_ns: int
    end_ns: int
    self_ns: int = 0
    kind: str = "INTERNAL"
    target: str | None = None
    error: bool = False
    status: str | None = None
    status_message: str | None = None
    exception: str | None = None
    error_log: str | None = None
    attributes: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def signature(self) -> tuple[str, str, str | None]:
        return (self.service, self.name, self.target)


@dataclass(frozen=True)
class FlowSide:
    """One flow: its steps and its critical path (ns per step key and segment)."""

    flow_id: str
    steps: tuple[Step, ...]
    critical: dict = field(default_factory=dict, compare=False, hash=False)   # (key, segment) → ns
    status: str | None = None
    duration_ns: int = 0
    type_name: str | None = None
    business_key: str | None = None


@dataclass(frozen=True)
class Pair:
    """Two aligned steps (one side None: the step is only in the other flow). `path`: the
    labels from the top of the flow down to it."""

    path: tuple[str, ...]
    a: Step | None
    b: Step | None

    @property
    def label(self) -> str:
        return self.path[-1]


@dataclass(frozen=True)
class Lone:
    """A step only in one flow, with how many steps run below it (only there too)."""

    side: str
    path: tuple[str, ...]
    step: Step
    below: int


@dataclass(frozen=True)
class Timing:
    path: tuple[str, ...]
    a_ms: float
    b_ms: float
    a_self_ms: float
    b_self_ms: float

    @property
    def delta_ms(self) -> float:
        return self.a_ms - self.b_ms

    @property
    def self_delta_ms(self) -> float:
        return self.a_self_ms - self.b_self_ms


@dataclass(frozen=True)
class PathChange:
    """A step's time on the critical path in each flow; `segment` span or broker_wait (the
    wait before that consumer). `where`: 'a' on A's path only, 'b' on B's only, 'both'."""

    path: tuple[str, ...]
    segment: str
    a_ms: float
    b_ms: float

    @property
    def where(self) -> str:
        return "both" if self.a_ms > 0 and self.b_ms > 0 else "a" if self.a_ms > 0 else "b"

    @property
    def delta_ms(self) -> float:
        return self.a_ms - self.b_ms


@dataclass(frozen=True)
class AttributeChange:
    path: tuple[str, ...]
    key: str
    a: str | None
    b: str | None


@dataclass(frozen=True)
class ErrorState:
    status: str | None
    message: str | None
    exception: str | None
    error_log: str | None

    @property
    def summary(self) -> str:
        """The exception, the status message unless the exception says it, the error log."""
        message = self.message
        if message and self.exception and message.split(": ", 1)[-1] in self.exception:
            message = None
        parts = [self.exception, message, f"error log: {self.error_log}" if self.error_log else None]
        return "; ".join(p for p in parts if p) or (self.status or "error")


@dataclass(frozen=True)
class ErrorChange:
    """A step failing in one flow and not the other (None: it did not fail, or is not
    there), or failing differently in both."""

    path: tuple[str, ...]
    a: ErrorState | None
    b: ErrorState | None
    a_present: bool = True
    b_present: bool = True
    a_starts: bool = False      # A fails here and in no step below: where its failure started


@dataclass(frozen=True)
class Comparison:
    a: FlowSide
    b: FlowSide
    pairs: tuple[Pair, ...]
    only_in_a: tuple[Lone, ...]
    only_in_b: tuple[Lone, ...]
    timings: tuple[Timing, ...]          # aligned steps, the largest self-time change first
    critical_path: tuple[PathChange, ...]  # steps on one path only first, then by change
    attributes: tuple[AttributeChange, ...]
    errors: tuple[ErrorChange, ...]


# --- alignment ---------------------------------------------------------------------------


def _children(steps: tuple[Step, ...]) -> dict[str | None, list[Step]]:
    keys = {s.key for s in steps}
    out: dict[str | None, list[Step]] = defaultdict(list)
    for s in steps:
        out[s.parent if s.parent in keys else None].append(s)
    for group in out.values():
        group.sort(key=lambda s: (s.start_ns, s.key))
    return out


def _label(step: Step, occurrence: int, repeated: bool) -> str:
    text = f"{step.service} {step.name}"
    if step.target and step.target not in step.name:
        text += f" → {step.target}"
    return text + (f" #{occurrence + 1}" if repeated else "")


def _by_signature(children: list[Step]) -> dict[tuple, list[Step]]:
    groups: dict[tuple, list[Step]] = {}
    for s in children:
        groups.setdefault(s.signature, []).append(s)
    return groups


def align(a: FlowSide, b: FlowSide) -> tuple[list[Pair], list[Lone], list[Lone]]:
    """Aligned steps, top down; and the steps only in A, only in B (the topmost of each
    subtree that is only there, with the size of that subtree)."""
    kids = {"a": _children(a.steps), "b": _children(b.steps)}
    pairs: list[Pair] = []
    lone: dict[str, list[Lone]] = {"a": [], "b": []}

    def subtree(side: str, step: Step, path: tuple[str, ...]) -> list[tuple[Step, tuple[str, ...]]]:
        out, stack = [], [(step, path)]
        while stack:
            s, here = stack.pop()
            out.append((s, here))
            groups = _by_signature(kids[side].get(s.key, []))
            for steps in groups.values():
                for i, child in enumerate(steps):
                    stack.append((child, here + (_label(child, i, len(steps) > 1),)))
        return out

    stack: list[tuple[str | None, str | None, tuple[str, ...]]] = [(None, None, ())]
    while stack:
        pa, pb, path = stack.pop()
        ga, gb = _by_signature(kids["a"].get(pa, [])), _by_signature(kids["b"].get(pb, []))
        later = []
        for sig in list(ga) + [s for s in gb if s not in ga]:
            la, lb = ga.get(sig, []), gb.get(sig, [])
            repeated = max(len(la), len(lb)) > 1
            for i in range(max(len(la), len(lb))):
                sa = la[i] if i < len(la) else None
                sb = lb[i] if i < len(lb) else None
                here = path + (_label(sa or sb, i, repeated),)
                if sa is not None and sb is not None:
                    pairs.append(Pair(here, sa, sb))
                    later.append((sa.key, sb.key, here))
                else:
                    side, step = ("a", sa) if sa is not None else ("b", sb)
                    below = subtree(side, step, here)
                    lone[side].append(Lone(side, here, step, len(below) - 1))
                    for s, where in below:      # each step of it, paired with nothing
                        pairs.append(Pair(where, s if side == "a" else None,
                                          s if side == "b" else None))
        stack.extend(reversed(later))
    return pairs, lone["a"], lone["b"]


# --- what differs ---------------------------------------------------------------------------


# Attribute keys that differ from run to run by nature (ids, times, ports, counters such as
# RabbitMQ's delivery tag, sizes of bodies that carry ids):
# the key split at '.', '_' and '-' holding one of these words, or a business key.
VOLATILE_WORDS = frozenset({"id", "ids", "uuid", "guid", "time", "timestamp", "ts", "date",
                            "duration", "elapsed", "latency", "port", "pid", "tid", "thread",
                            "nonce", "seq", "sequence", "offset", "start", "end", "trace",
                            "span", "traceparent", "tracestate", "correlation", "tag", "size"})
_WORDS = re.compile(r"[._\-]")
# A token of six or more letters and digits, with a digit: an id or a time, not a status code.
_ID_TOKEN = re.compile(r"\b(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{6,}\b")


def volatile(key: str) -> bool:
    """Whether an attribute key names something that differs in every run (an id, a time)."""
    words = {w.lower() for w in _WORDS.split(key)}
    return key in DEFAULT_BUSINESS_KEYS or bool(words & VOLATILE_WORDS) or key.endswith("Id")


def _text(value) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def masked(text: str) -> str:
    """`text` with its id-like tokens (six or more letters and digits, with a digit) as '#'."""
    return _ID_TOKEN.sub("#", text)


def same_shape(a: str | None, b: str | None) -> bool:
    """Equal once id-like tokens are masked: `/orders/o-3f2a9c81d0` and `/orders/o-77be01a3c2`
    are the same request."""
    if a is None or b is None:
        return a is b
    return masked(a) == masked(b)


def _attribute_changes(pair: Pair) -> list[AttributeChange]:
    a, b = pair.a.attributes, pair.b.attributes
    out = []
    for key in sorted(set(a) | set(b)):
        if volatile(key):
            continue
        va, vb = _text(a.get(key)), _text(b.get(key))
        if not same_shape(va, vb):
            out.append(AttributeChange(pair.path, key, va, vb))
    return out


def _error(step: Step | None) -> ErrorState | None:
    if step is None or not step.error:
        return None
    return ErrorState(step.status, step.status_message, step.exception, step.error_log)


def _error_change(pair: Pair, failing_parents: set[str]) -> ErrorChange | None:
    ea, eb = _error(pair.a), _error(pair.b)
    if ea is None and eb is None:
        return None
    if ea is not None and eb is not None and all(
            same_shape(x, y) for x, y in ((ea.status, eb.status), (ea.message, eb.message),
                                          (ea.exception, eb.exception), (ea.error_log, eb.error_log))):
        return None
    return ErrorChange(pair.path, ea, eb, pair.a is not None, pair.b is not None,
                       ea is not None and pair.a.key not in failing_parents)


def _ms(ns: int | float) -> float:
    return ns / 1e6


def compare(a: FlowSide, b: FlowSide) -> Comparison:
    """What `a` did differently from `b`."""
    pairs, only_a, only_b = align(a, b)
    both = [p for p in pairs if p.a is not None and p.b is not None]
    timings = [Timing(p.path, _ms(p.a.duration_ns), _ms(p.b.duration_ns), _ms(p.a.self_ns),
                      _ms(p.b.self_ns)) for p in both]
    timings.sort(key=lambda t: (-abs(t.self_delta_ms), -abs(t.delta_ms), t.path))
    path_changes = []
    for p in pairs:
        for segment in (SPAN, WAIT):
            on_a = a.critical.get((p.a.key, segment), 0) if p.a is not None else 0
            on_b = b.critical.get((p.b.key, segment), 0) if p.b is not None else 0
            if on_a or on_b:
                path_changes.append(PathChange(p.path, segment, _ms(on_a), _ms(on_b)))
    path_changes.sort(key=lambda c: (c.where == "both", -abs(c.delta_ms), c.path, c.segment))
    attributes = [c for p in both for c in _attribute_changes(p)]
    starts = {"a": min((s.start_ns for s in a.steps), default=0),
              "b": min((s.start_ns for s in b.steps), default=0)}
    at = {id(p): (p.a.start_ns - starts["a"]) if p.a is not None else (p.b.start_ns - starts["b"])
          for p in pairs}
    failing_parents = {s.parent for s in a.steps if s.error and s.parent is not None}
    changes = (_error_change(p, failing_parents) for p in pairs)
    errors = [(at[id(p)], n, c) for n, (p, c) in enumerate(zip(pairs, changes)) if c is not None]
    errors.sort()       # in the order they happened: where the flows parted first
    return Comparison(a, b, tuple(pairs), tuple(only_a), tuple(only_b), tuple(timings),
                      tuple(path_changes), tuple(attributes), tuple(c for _, _, c in errors))
