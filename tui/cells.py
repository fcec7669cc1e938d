"""How values look in the UI's cells: durations, times, styles, statuses, service colours."""

from __future__ import annotations

import zlib
from datetime import datetime, timezone

from rich.text import Text

# Mid-tone colours that read on dark and light backgrounds alike.
SERVICE_COLOURS = ("dodger_blue2", "dark_orange3", "medium_purple3", "green4", "deep_pink3",
                   "dark_cyan", "gold3", "orchid", "steel_blue", "chartreuse4", "indian_red",
                   "turquoise4")
STYLE_COLOURS = {"orchestrated": "dodger_blue2", "choreographed": "medium_purple3",
                 "hybrid": "dark_orange3"}
STATUS_COLOURS = {"failed": "bold red", "degraded": "dark_orange3", "incomplete": "gold3",
                  "running": "dark_cyan", "complete": "green4"}


def service_colour(name: str, order: list[str] | None = None) -> str:
    if order and name in order:
        return SERVICE_COLOURS[order.index(name) % len(SERVICE_COLOURS)]
    return SERVICE_COLOURS[zlib.crc32(name.encode()) % len(SERVICE_COLOURS)]


def _missing(value) -> bool:
    try:
        return value is None or float(value) != float(value)
    except TypeError:           # pandas' NA
        return True


def ms(value: float | None) -> str:
    if _missing(value):
        return "-"
    value = float(value)
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    if value >= 100:
        return f"{value:,.0f} ms"
    return f"{value:,.1f} ms"


def clock(ns: int | None, date: bool = False) -> str:
    if ns is None:
        return "-"
    moment = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S.%f")[: 19 if date else 12]


def style(name: str | None) -> Text:
    return Text(name or "-", style=STYLE_COLOURS.get(name or "", ""))


def status(name: str | None) -> Text:
    return Text(name or "-", style=STATUS_COLOURS.get(name or "", ""))


def percent(rate: float | None) -> Text:
    if _missing(rate):
        return Text("-")
    rate = float(rate)
    return Text(f"{rate:.1%}", style="bold red" if rate >= 0.05 else ("dark_orange3" if rate > 0 else ""))


def right(text: str, colour: str = "") -> Text:
    return Text(text, style=colour, justify="right")


def fill_table(table, columns, rows, keys=None, max_width: int = 48) -> None:
    """Replace a DataTable's rows, with column widths measured here from the cells.

    The widths are given, not left to DataTable's own measuring: that runs when the table is
    idle, and a live app that refills tables between frames could show columns cut to their
    labels' width."""
    from rich.cells import cell_len

    widths = [cell_len(str(label)) for label, _ in columns]
    for row in rows:
        for i, value in enumerate(row):
            text = value.plain if isinstance(value, Text) else str(value)
            widths[i] = max(widths[i], min(max_width, cell_len(text)))
    table.clear(columns=True)
    for (label, key), width in zip(columns, widths):
        table.add_column(label, key=key, width=width)
    for i, row in enumerate(rows):
        table.add_row(*row, key=None if keys is None else keys[i])
