"""A check file (YAML) read into typed checks; every mistake is named by line and key with
what was expected (docs/guides/checks.md is the reference of the format)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tracekit.errors import TracekitError
from tracekit.units import parse_duration

STATUSES = ("complete", "degraded", "failed", "incomplete", "running")
# A flow failed or stopped short; what `max_failure_share` counts when no `status` is given.
FAILURE_STATUSES = ("failed", "incomplete")
KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "max": 1.0}
EDGE_RULES = ("subset", "equal")

SELECTOR_KEYS = {
    "flows": ("flow_type",),
    "spans": ("service", "name", "kind", "attributes", "flow_type"),
    "messages": ("destination", "producer", "consumer", "flow_type"),
}
EXPECT_KEYS = {
    "flows": ("status", "max_failure_share", "count", "duration", "edges"),
    "spans": ("count", "errors", "attributes", "duration"),
    "messages": ("count", "wait"),
}


class CheckFileError(TracekitError):
    """The check file cannot be read as checks; exits 2 like a usage error."""

    exit_code = 2


@dataclass(frozen=True)
class Selector:
    """Which flows, spans or messages a check looks at; None matches anything."""

    flow_type: str | None = None
    service: str | None = None
    name: str | None = None
    kind: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    destination: str | None = None
    producer: str | None = None
    consumer: str | None = None


@dataclass(frozen=True)
class Check:
    name: str
    line: int
    subject: str                                   # flows | spans | messages
    selector: Selector
    statuses: tuple[str, ...] | None = None        # the statuses a flow may have
    max_failure_share: float | None = None
    count_min: int = 1                             # selecting nothing fails unless said so
    count_max: int | None = None
    percentiles_ms: tuple[tuple[str, float], ...] = ()   # (p95, 2000.0): p95 <= 2000 ms
    max_errors: int | None = None
    attributes: tuple[tuple[str, str], ...] = ()   # every selected span has these
    edges: str | None = None                       # subset | equal, against the baseline


@dataclass(frozen=True)
class CheckFile:
    path: Path
    checks: tuple[Check, ...]
    baseline: Path | None                          # resolved against the file's folder

    @property
    def needs_baseline(self) -> bool:
        return any(c.edges for c in self.checks)


def read(path: Path) -> CheckFile:
    """The check file at `path`."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise CheckFileError(f"cannot read the check file: {exc}") from None
    except UnicodeDecodeError:
        raise CheckFileError(f"{path} is not UTF-8 text") from None
    return parse(text, path)


def parse(text: str, path: Path) -> CheckFile:
    """Checks from the YAML `text` of the file at `path`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start is not None:
            problem += f", {context} on line {start.line + 1}"
        raise CheckFileError(f"{where}: not valid YAML: {problem}") from None
    where = _Where(path)
    if root is None:
        raise CheckFileError(f"{path}: the file is empty; it needs `checks:`, a list of checks "
                             "(see docs/guides/checks.md)")
    top = where.mapping(root, "the file", ("checks", "baseline"))
    if "checks" not in top:
        raise where.error(root, "the file needs `checks:`, a list of checks")
    baseline = None
    if "baseline" in top:
        baseline = path.parent / where.text(top["baseline"][1], "baseline", "a file path")
    items = top["checks"][1]
    if not isinstance(items, SequenceNode) or not items.value:
        raise where.error(items, "`checks` must be a list of checks, each starting with `- name:`")
    checks = tuple(_check(where, node) for node in items.value)
    seen: dict[str, int] = {}
    for check in checks:
        if check.name in seen:
            raise CheckFileError(f"{path}:{check.line}: another check is named {check.name!r} "
                                 f"(line {seen[check.name]}); give each check its own name")
        seen[check.name] = check.line
    return CheckFile(path, checks, baseline)


def _check(where: _Where, node: Node) -> Check:
    keys = where.mapping(node, "a check", ("name", *SELECTOR_KEYS, "expect"))
    line = node.start_mark.line + 1
    if "name" not in keys:
        raise where.error(node, "a check needs a `name:`")
    name = where.text(keys["name"][1], "name", "the check's name")
    subjects = [s for s in SELECTOR_KEYS if s in keys]
    if len(subjects) != 1:
        raise where.error(node, f"check {name!r} needs exactly one of `flows:`, `spans:` or "
                                f"`messages:` (what it looks at); it has {len(subjects) or 'none'}")
    subject = subjects[0]
    selector = _selector(where, keys[subject][1], subject)
    if "expect" not in keys:
        raise where.error(node, f"check {name!r} needs `expect:`, what must hold (one of "
                                + ", ".join(EXPECT_KEYS[subject]) + ")")
    expect_node = keys["expect"][1]
    expect = where.mapping(expect_node, f"`expect` of {subject}", EXPECT_KEYS[subject])
    if not expect:
        raise where.error(expect_node, "`expect` is empty: give at least one of "
                          + ", ".join(EXPECT_KEYS[subject]))
    fields: dict = {}
    for key, (key_node, value) in expect.items():
        fields.update(_expectation(where, subject, key, key_node, value))
    if "max_failure_share" in fields and "statuses" not in fields:
        fields["statuses"] = tuple(s for s in STATUSES if s not in FAILURE_STATUSES)
    return Check(name=name, line=line, subject=subject, selector=selector, **fields)


def _selector(where: _Where, node: Node, subject: str) -> Selector:
    if isinstance(node, ScalarNode) and node.value in ("", "~", "null", "all"):
        return Selector()      # `messages: all`, or left empty: everything in the window
    keys = where.mapping(node, f"`{subject}` (the selector)", SELECTOR_KEYS[subject])
    fields: dict = {}
    for key, (_, value) in keys.items():
        if key == "attributes":
            fields[key] = _attributes(where, value, "attributes")
        elif key == "kind":
            kind = where.text(value, key, "one of " + ", ".join(KINDS)).upper()
            if kind not in KINDS:
                raise where.error(value, f"`kind` is {kind!r}; expected one of " + ", ".join(KINDS))
            fields[key] = kind
        else:
            fields[key] = where.text(value, key, "a name")
    return Selector(**fields)


def _expectation(where: _Where, subject: str, key: str, key_node: Node, node: Node) -> dict:
    if key == "status":
        values = ([where.text(n, key, "a flow status") for n in node.value]
                  if isinstance(node, SequenceNode) else [where.text(node, key, "a flow status")])
        for value in values:
            if value not in STATUSES:
                raise where.error(node, f"`status` {value!r} is not a flow status; expected "
                                  + " or ".join(STATUSES) + " (or a list of them)")
        return {"statuses": tuple(values)}
    if key == "max_failure_share":
        return {"max_failure_share": where.share(node, key)}
    if key == "count":
        return _count(where, node)
    if key == "errors":
        return {"max_errors": where.whole(node, key, "the most spans that may fail, e.g. 0")}
    if key == "attributes":
        return {"attributes": _attributes(where, node, key)}
    if key in ("duration", "wait"):
        bounds = where.mapping(node, f"`{key}`", tuple(PERCENTILES))
        if not bounds:
            raise where.error(node, f"`{key}` needs at least one of " + ", ".join(PERCENTILES))
        return {"percentiles_ms": tuple((p, where.duration_ms(v, f"{key}.{p}"))
                                        for p, (_, v) in bounds.items())}
    if key == "edges":
        rule = where.text(node, key, "subset or equal")
        if rule not in EDGE_RULES:
            raise where.error(node, f"`edges` is {rule!r}; expected `subset` (no edge the baseline "
                                    "lacks) or `equal` (the same edges as the baseline)")
        return {"edges": rule}
    raise where.error(key_node, f"unknown expectation {key!r}")   # unreachable: keys are checked


def _count(where: _Where, node: Node) -> dict:
    if isinstance(node, ScalarNode):
        n = where.whole(node, "count", "a number, or `{min: N, max: M}`")
        return {"count_min": n, "count_max": n}
    bounds = where.mapping(node, "`count`", ("min", "max"))
    if not bounds:
        raise where.error(node, "`count` needs `min:`, `max:` or both")
    low = where.whole(bounds["min"][1], "count.min", "a whole number") if "min" in bounds else 0
    high = where.whole(bounds["max"][1], "count.max", "a whole number") if "max" in bounds else None
    if high is not None and high < low:
        raise where.error(node, f"`count` has max {high} below min {low}")
    return {"count_min": low, "count_max": high}


def _attributes(where: _Where, node: Node, key: str) -> tuple[tuple[str, str], ...]:
    pairs = where.mapping(node, f"`{key}`", None)
    if not pairs:
        raise where.error(node, f"`{key}` needs at least one `attribute.key: value`")
    out = []
    for name, (_, value) in pairs.items():
        if not isinstance(value, ScalarNode) or value.tag == "tag:yaml.org,2002:null":
            raise where.error(value, f"attribute {name!r} needs a value (a string, number or "
                                     "true/false) to be equal to")
        out.append((name, attribute_text(where.scalar(value))))
    return tuple(out)


def attribute_text(value) -> str:
    """A value as the store's attributes read as text: true/false, 200, 1.5, text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Where:
    """Reads nodes of one file; its errors say where (file:line) and what was expected."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._construct = SafeConstructor()

    def error(self, node: Node, message: str) -> CheckFileError:
        return CheckFileError(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def scalar(self, node: Node):
        return self._construct.construct_object(node, deep=True)

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...] | None) -> dict:
        """key -> (key node, value node); unknown and repeated keys are errors."""
        if not isinstance(node, MappingNode):
            expected = ("keys " + ", ".join(allowed)) if allowed else "`key: value` pairs"
            raise self.error(node, f"{what} must be a mapping ({expected})")
        out: dict = {}
        for key_node, value in node.value:
            key = str(self.scalar(key_node)) if isinstance(key_node, ScalarNode) else None
            if key is None:
                raise self.error(key_node, f"a key of {what} must be a name")
            if allowed is not None and key not in allowed:
                raise self.error(key_node, f"unknown key {key!r} in {what}; expected one of "
                                 + ", ".join(allowed))
            if key in out:
                raise self.error(key_node, f"{key!r} appears twice in {what}")
            out[key] = (key_node, value)
        return out

    def text(self, node: Node, key: str, expected: str) -> str:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if value is None or isinstance(value, (bool, list, dict)) or str(value) == "":
            raise self.error(node, f"`{key}` must be {expected}")
        return str(value)

    def whole(self, node: Node, key: str, expected: str) -> int:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(node, f"`{key}` must be {expected}")
        return value

    def share(self, node: Node, key: str) -> float:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                value = float(value.strip()[:-1]) / 100
            except ValueError:
                value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise self.error(node, f"`{key}` must be a share of the flows: 5% or 0.05 "
                                   "(between 0 and 1)")
        return float(value)

    def duration_ms(self, node: Node, key: str) -> float:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        text = str(value).strip() if isinstance(value, str) else ""
        try:
            if not text or text[-1].isdigit():
                raise ValueError
            return parse_duration(text) * 1000
        except ValueError:
            raise self.error(node, f"`{key}` must be a duration with its unit, e.g. 250ms, 2s, "
                                   "1m") from None
