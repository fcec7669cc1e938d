"""The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0, with exemplars in the
latter; which one a scraper gets follows its Accept header."""

from __future__ import annotations

import math
from dataclasses import dataclass

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass(frozen=True)
class Exemplar:
    trace_id: str
    value: float


@dataclass(frozen=True)
class Sample:
    suffix: str                              # '', '_total', '_bucket', '_sum', '_count'
    labels: tuple[tuple[str, str], ...]
    value: float
    exemplar: Exemplar | None = None


@dataclass(frozen=True)
class Family:
    name: str          # a counter's without '_total'
    type: str          # counter, gauge or histogram
    help: str
    samples: tuple[Sample, ...]


def wants_openmetrics(accept: str | None) -> bool:
    """Whether an Accept header prefers OpenMetrics to the text format (Prometheus asks for
    OpenMetrics first, at q=1, and text/plain at q=0.5)."""
    best_open, best_text = -1.0, -1.0
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media == "application/openmetrics-text":
            best_open = max(best_open, q)
        elif media in ("text/plain", "text/*", "*/*"):
            best_text = max(best_text, q)
    return best_open > 0 and best_open >= best_text


def render(families: list[Family], openmetrics: bool) -> str:
    """The families as exposition text: OpenMetrics (ends with '# EOF', exemplars on buckets
    and counters) or the Prometheus text format (no exemplars)."""
    lines: list[str] = []
    for family in families:
        # The text format names a counter's family after its sample (x_total); OpenMetrics
        # after the counter (x).
        name = family.name + "_total" if family.type == "counter" and not openmetrics else family.name
        lines.append(f"# HELP {name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {name} {family.type}")
        for sample in family.samples:
            line = f"{family.name}{sample.suffix}{_labels(sample.labels)} {_number(sample.value)}"
            if openmetrics and sample.exemplar is not None:
                line += (f' # {{trace_id="{_escape(sample.exemplar.trace_id)}"}} '
                         f"{_number(sample.exemplar.value)}")
            lines.append(line)
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                  and abs(value) < 2**53):
        return str(int(value))
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def bound(value: float) -> str:
    """A bucket's `le` label: a float as Prometheus writes it (0.002, 1.0, +Inf)."""
    return "+Inf" if math.isinf(value) else repr(float(value))
