"""Durations and sizes as people type them on the command line: 7d, 90m, 10GB, 512MiB."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in '90s', '15m', '12h', '7d', '2w' (a bare number is seconds)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"bad duration {text!r}: use e.g. 90s, 15m, 12h, 7d")
    return float(match[1]) * _SECONDS[(match[2] or "s").lower()]


def parse_size(text: str) -> int:
    """Bytes in '500MB', '10GB', '512MiB', '2G' (powers of 1024 for KiB/MiB..., of 1000 for
    kB/MB...; a bare letter as its binary unit)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"bad size {text!r}: use e.g. 500MB, 10GB, 512MiB")
    unit = match[2].lower()
    if unit in ("", "b"):
        return int(float(match[1]))
    power = "kmgt".index(unit[0]) + 1
    base = 1000 if unit.endswith("b") and "i" not in unit else 1024
    return int(float(match[1]) * base ** power)
