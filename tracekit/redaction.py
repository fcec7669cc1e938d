"""Masking secrets at ingest: attribute keys that name credentials never reach the store.

A key matches when one of the patterns stands in it as a whole word (separated by anything
but a letter or digit, or by a camelCase hump), case-insensitively:
`http.request.header.authorization`, `db.password`, `x-csrf-token` and `accessToken` match;
`gen_ai.usage.input_tokens` does not. Maps nested in values and in arrays are searched too.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

DEFAULT_PATTERNS = ("authorization", "cookie", "set-cookie", "password", "passwd", "secret",
                    "token", "api[-_. ]?key")
REDACTED = "[REDACTED]"
_CAMEL_HUMP = re.compile(r"([a-z0-9])([A-Z])")


class Redactor:
    """Replaces the values of secret-looking keys, also inside nested maps."""

    def __init__(self, patterns: tuple[str, ...] = DEFAULT_PATTERNS):
        self.patterns = tuple(patterns)
        words = "|".join(f"(?:{p})" for p in self.patterns)
        self._regex = re.compile(rf"(?:^|[^a-z0-9])(?:{words})(?:$|[^a-z0-9])", re.I) if words else None
        self._secret_keys: dict[str, bool] = {}   # bounded: see _is_secret

    def __call__(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """The same dict, with secret values masked in place (decoders build fresh dicts)."""
        if self._regex is None:
            return attributes
        for key, value in attributes.items():
            if self._is_secret(key):
                attributes[key] = REDACTED
            elif isinstance(value, dict | list):
                self._nested(value)
        return attributes

    def _nested(self, value: Any) -> None:
        if isinstance(value, dict):
            self(value)
        elif isinstance(value, list):
            for item in value:
                self._nested(item)

    def _is_secret(self, key: str) -> bool:
        secret = self._secret_keys.get(key)
        if secret is None:
            if len(self._secret_keys) > 100_000:   # keys are unbounded input: keep memory flat
                self._secret_keys.clear()
            words = _CAMEL_HUMP.sub(r"\1_\2", key)
            secret = self._secret_keys[key] = self._regex.search(words) is not None
        return secret


@cache
def redactor_for(patterns: tuple[str, ...]) -> Redactor:
    """One Redactor per pattern set in a process, so its key cache is kept across requests."""
    return Redactor(patterns)
