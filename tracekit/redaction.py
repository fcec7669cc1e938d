"""Masking secrets at ingest: attribute keys that name credentials never reach the store.

A key matches when one of the patterns stands in it as a whole word (separated by anything
but a letter or digit), case-insensitively: `http.request.header.authorization`,
`db.password` and `x-csrf-token` match; `gen_ai.usage.input_tokens` does not.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

DEFAULT_PATTERNS = ("authorization", "cookie", "set-cookie", "password", "passwd", "secret",
                    "token", "api[-_. ]?key")
REDACTED = "[REDACTED]"


class Redactor:
    """Replaces the values of secret-looking keys, also inside nested maps."""

    def __init__(self, patterns: tuple[str, ...] = DEFAULT_PATTERNS):
        self.patterns = tuple(patterns)
        words = "|".join(f"(?:{p})" for p in self.patterns)
        self._regex = re.compile(rf"(?:^|[^a-z0-9])(?:{words})(?:$|[^a-z0-9])", re.I) if words else None
        self._secret_keys: dict[str, bool] = {}

    def __call__(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """The same dict, with secret values masked in place (decoders build fresh dicts)."""
        if self._regex is None:
            return attributes
        for key, value in attributes.items():
            secret = self._secret_keys.get(key)
            if secret is None:
                secret = self._secret_keys[key] = self._regex.search(key) is not None
            if secret:
                attributes[key] = REDACTED
            elif isinstance(value, dict):
                self(value)
        return attributes


@cache
def redactor_for(patterns: tuple[str, ...]) -> Redactor:
    """One Redactor per pattern set in a process, so its key cache is kept across requests."""
    return Redactor(patterns)
