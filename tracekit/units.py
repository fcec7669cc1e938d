"""Durations and sizes as people type them on the command line: 7d, 90m, 10GB, 512MiB."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# The units as people also spell them out: 1day, 2 days, 90min, 12hours.
_UNIT_NAMES = {"": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
               "min": "m", "mins": "m", "minute": "m", "minutes": "m",
               "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
               "day": "d", "days": "d", "week": "w", "weeks": "w"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in '90s', '15m', '12h', '7d', '2w', or '1 day', '90min' (a bare number is
    seconds)."""
    match = _DURATION.match(text)
    unit = match[2].lower() if match else None
    unit = _UNIT_NAMES.get(unit, unit)
    if unit not in _SECONDS:
        raise ValueError(f"bad duration {text!r}: use e.g. 90s, 15m, 12h, 7d")
    return float(match[1]) * _SECONDS[unit]


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
