"""A flow as a Mermaid sequence diagram (calls, messages through the broker, the failure),
and a strict check of the subset of Mermaid's sequence-diagram grammar it writes."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

MAX_LABEL = 70
MAX_MESSAGES = 80           # a diagram past this is unreadable; the rest is summarised in a note


def label(text) -> str:
    """Text safe after a Mermaid `:` or `as`: `;` would end the statement, `#` starts an
    entity, `<`/`>` are HTML to the renderer; they become Mermaid entity codes."""
    text = " ".join(str(text).split())
    if len(text) > MAX_LABEL:
        text = text[:MAX_LABEL - 1] + "…"
    out = []
    for ch in text:
        if ch in "#;<>&{}\"%":
            out.append(f"#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out) or " "


def _ms(ns) -> str:
    return f"{ns / 1e6:,.1f} ms"


def sequence(analysis, flow_id: str) -> str:
    """The diagram of one flow: synchronous calls between services with their answers,
    producer → broker → consumer hops with the broker wait, and a note on each failure origin."""
    spans = analysis.spans[analysis.spans["flow_id"] == flow_id]
    edges = analysis.edges[analysis.edges["flow_id"] == flow_id]
    info = spans.set_index("key")
    participants: dict[str, str] = {}

    def who(name: str) -> str:
        if name not in participants:
            participants[name] = f"p{len(participants)}"
        return participants[name]

    for service in spans.sort_values("start_adj")["service_name"]:
        who(service)
    events: list[tuple[int, int, str]] = []     # (time, order at equal times, line)
    calls = edges[edges["kind"] == "call"]
    has_server = set()
    for e in calls.itertuples():
        if e.src_service == e.dst_service:
            continue
        src, dst = info.loc[e.src], info.loc[e.dst]
        has_server.add(e.src)
        a, b = who(e.src_service), who(e.dst_service)
        events.append((int(dst["start_adj"]), 0, f"{a}->>{b}: {label(e.dst_name)}"))
        status = dst["http_status"]
        answer = (f"{int(status)} " if pd.notna(status) else "") + _ms(dst["end_adj"] - dst["start_adj"])
        arrow = "--x" if bool(dst["error"]) else "-->>"
        events.append((int(dst["end_adj"]), 2, f"{b}{arrow}{a}: {label(answer)}"))
    published = set()
    for e in edges[edges["kind"] != "call"].itertuples():
        if e.kind == "correlation" and e.via != "message_id":
            continue
        src, dst = info.loc[e.src], info.loc[e.dst]
        broker = who(f"broker {e.destination or '?'}")
        if (e.src, broker) not in published:     # one send, however many consumers
            published.add((e.src, broker))
            events.append((int(src["end_adj"]), 1, f"{who(e.src_service)}-){broker}: "
                           f"{label('publish ' + str(e.destination or '?'))}"))
        wait = "" if pd.isna(e.wait_ns) else f" after {_ms(e.wait_ns)}"
        arrow = "--x" if bool(dst["error"]) else "-)"
        # A consumer may start before the send span ends: deliver after the publish anyway.
        delivered = max(int(dst["start_adj"]), int(src["end_adj"]))
        events.append((delivered, 2, f"{broker}{arrow}{who(e.dst_service)}: {label(e.dst_name + wait)}"))
    from tracekit.analysis.causes import origins

    failed = spans[spans["error"]]
    origin = origins(analysis, [flow_id]).get(flow_id)
    for s in failed.itertuples():
        refused = s.kind == "CLIENT" and s.key not in has_server
        if s.key != origin and not refused:
            continue
        what = s.exception_type if isinstance(s.exception_type, str) else (
            s.status_message if isinstance(s.status_message, str) and s.status_message else "error")
        what = what.rsplit(".", 1)[-1]
        message = s.exception_message if isinstance(s.exception_message, str) else ""
        prefix = "failure starts here: " if s.key == origin else "call failed, no answer: "
        text = f"{prefix}{s.name} {what}" + (f": {message}" if message else "")
        events.append((int(s.end_adj), 3, f"Note over {who(s.service_name)}: {label(text)}"))
    events.sort(key=lambda e: (e[0], e[1]))
    lines = ["sequenceDiagram"]
    for name, ident in participants.items():
        kind = "participant"
        lines.append(f"    {kind} {ident} as {label(name)}")
    shown = events[:MAX_MESSAGES]
    lines.extend("    " + line for _, _, line in shown)
    if len(events) > len(shown):
        first = next(iter(participants.values()))
        lines.append(f"    Note over {first}: {label(f'{len(events) - len(shown)} more steps not shown')}")
    return "\n".join(lines) + "\n"


_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_TEXT = r"(?:[^;#<>\n]|#\d+;)*"
_ARROW = r"(?:-->>|->>|--x|-x|--\)|-\)|-->|->)"
_RULES = {
    "participant": re.compile(rf"(?:participant|actor) ({_ID})(?: as ({_TEXT}))?"),
    "message": re.compile(rf"({_ID})\s*{_ARROW}\s*[+-]?({_ID}): ?({_TEXT})"),
    "note": re.compile(rf"Note (?:over|left of|right of) ({_ID})(?:,\s*({_ID}))?: ?({_TEXT})"),
    "open": re.compile(rf"(?:alt|opt|loop|par|critical|rect) ?{_TEXT}"),
    "else": re.compile(rf"(?:else|and|option) ?{_TEXT}"),
    "end": re.compile(r"end"),
    "autonumber": re.compile(r"autonumber"),
}


def check(text: str) -> list[str]:
    """Problems with `text` as a sequence diagram in the subset this module writes: an empty
    list when it is valid. Participants must be declared before use; blocks must close."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("%%")]
    if not lines or lines[0] != "sequenceDiagram":
        return ["the first line must be `sequenceDiagram`"]
    problems, declared, depth = [], set(), 0
    for n, line in enumerate(lines[1:], 2):
        for rule, pattern in _RULES.items():
            m = pattern.fullmatch(line)
            if m:
                break
        else:
            problems.append(f"line {n}: not a statement: {line!r}")
            continue
        if rule == "participant":
            if m.group(1) in declared:
                problems.append(f"line {n}: {m.group(1)} declared twice")
            declared.add(m.group(1))
        elif rule in ("message", "note"):
            for ident in m.groups()[:2]:
                if ident is not None and ident not in declared:
                    problems.append(f"line {n}: {ident} is not a declared participant")
        elif rule == "open":
            depth += 1
        elif rule in ("else", "end"):
            if depth == 0:
                problems.append(f"line {n}: `{line.split()[0]}` outside a block")
            elif rule == "end":
                depth -= 1
    if depth:
        problems.append(f"{depth} block(s) not closed with `end`")
    return problems


_MESSAGE = re.compile(rf"(?P<src>{_ID})\s*(?P<arrow>{_ARROW})\s*[+-]?(?P<dst>{_ID}): ?(?P<text>{_TEXT})")


@dataclass(frozen=True)
class Statement:
    """A message (`arrow` from `src` to `dst`) or a note (over `src`), its text unescaped."""

    kind: str
    src: str
    dst: str | None
    arrow: str | None
    text: str


def unescape(text: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)


def statements(text: str) -> tuple[dict[str, str], list[Statement]]:
    """The participants (id → name) and the messages and notes of a diagram this module
    wrote, in order; what else the grammar allows is skipped."""
    participants: dict[str, str] = {}
    found: list[Statement] = []
    for line in (line.strip() for line in text.splitlines()[1:]):
        m = _RULES["participant"].fullmatch(line)
        if m:
            participants[m.group(1)] = unescape(m.group(2) or m.group(1))
            continue
        m = _MESSAGE.fullmatch(line)
        if m:
            found.append(Statement("message", m["src"], m["dst"], m["arrow"], unescape(m["text"])))
            continue
        m = _RULES["note"].fullmatch(line)
        if m:
            found.append(Statement("note", m.group(1), m.group(2), None, unescape(m.group(3))))
    return participants, found
