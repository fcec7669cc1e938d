"""Reading the SQL console's text: the statement under the cursor and the word being typed
(what completion completes). Pure functions on strings; no Textual here."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words offered besides the store's names: the ones every query starts with.
KEYWORDS = ("SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "JOIN",
            "LEFT JOIN", "USING", "DISTINCT", "COUNT", "FILTER", "DESC", "ASC", "WITH", "AS",
            "AND", "OR", "NOT", "BETWEEN", "LIKE", "ILIKE", "CASE", "WHEN", "THEN", "ELSE",
            "END", "UNION ALL", "DESCRIBE", "SUMMARIZE", "EXPLAIN", "QUALIFY", "GROUP BY ALL",
            "ORDER BY ALL", "quantile_cont", "epoch_ms", "date_trunc", "json_keys")

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_ATTRIBUTE_KEY = re.compile(r"attributes\s*\[\s*'([^'\n]*)$")


def statement_at(text: str, offset: int) -> str:
    """The statement that holds character `offset`: `;` ends a statement unless it is quoted
    or in a comment. On the `;` itself, or in blank space after it, the statement before."""
    spans, start, i, n = [], 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            end = text.find(ch, i + 1)
            i = n if end < 0 else end + 1
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if ch == ";":
            spans.append((start, i + 1))
            start = i + 1
        i += 1
    spans.append((start, n))
    chosen = next((s for s in spans if s[0] <= offset < s[1]), spans[-1])
    if not text[chosen[0]:chosen[1]].strip(" \t\n;") and len(spans) > 1:
        before = [s for s in spans if s[1] <= chosen[0] and text[s[0]:s[1]].strip(" \t\n;")]
        chosen = before[-1] if before else chosen
    return text[chosen[0]:chosen[1]].strip().rstrip(";").strip()


@dataclass(frozen=True)
class Word:
    """What is being typed before the cursor."""

    text: str
    attribute_key: bool     # inside attributes['…: a key of the spans' attribute maps


def word_before(text_before_cursor: str) -> Word | None:
    key = _ATTRIBUTE_KEY.search(text_before_cursor)
    if key:
        return Word(key[1], True)
    word = _WORD.search(text_before_cursor)
    return Word(word[0], False) if word else None


@dataclass(frozen=True)
class Completion:
    text: str
    kind: str       # table, column, attribute key, keyword


def completions(word: Word, tables: dict[str, list[str]], keys: list[str],
                limit: int = 30) -> list[Completion]:
    """Names that start with the word (any case), then names that contain it; the word
    itself is not offered."""
    if word.attribute_key:
        pool = [Completion(k, "attribute key") for k in keys]
    else:
        columns: dict[str, list[str]] = {}
        for table, names in tables.items():
            for name in names:
                columns.setdefault(name, []).append(table)
        pool = ([Completion(t, "table") for t in tables]
                + [Completion(c, "column of " + ", ".join(ts[:3]) + (" …" if len(ts) > 3 else ""))
                   for c, ts in columns.items()]
                + [Completion(k if not word.text.islower() else k.lower(), "keyword")
                   for k in KEYWORDS])
    needle = word.text.lower()
    if not needle and not word.attribute_key:
        return []
    seen: set[str] = set()
    pool = [c for c in pool if not (c.text in seen or seen.add(c.text))]   # a table before its namesake column
    rank = {"table": 0, "attribute key": 0, "keyword": 2}
    starts = sorted((c for c in pool if c.text.lower().startswith(needle) and c.text != word.text),
                    key=lambda c: (rank.get(c.kind, 1), len(c.text), c.text))
    inside = [c for c in pool if needle and needle in c.text.lower()[1:]
              and not c.text.lower().startswith(needle)]
    return (starts + inside)[:limit]
