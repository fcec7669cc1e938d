"""Reading what the terminal UI shows, for the Pilot tests: the text of the screen as a
person sees it (from Textual's own SVG screenshot), and waiting for the app to settle."""

from __future__ import annotations

import html
import re
import time

_TEXT = re.compile(r'<text class="[^"]*-r\d+"[^>]*?x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>')
CELL_WIDTH = 12.2       # pixels per column in Textual's SVG export


def screen_text(app) -> str:
    """The characters on screen, line by line."""
    lines: dict[float, list[tuple[float, str]]] = {}
    for m in _TEXT.finditer(app.export_screenshot()):
        text = html.unescape(m[3]).replace("\xa0", " ")
        lines.setdefault(float(m[2]), []).append((float(m[1]), text))
    out = []
    for y in sorted(lines):
        row = ""
        for x, text in sorted(lines[y]):
            row = row.ljust(round(x / CELL_WIDTH)) + text
        out.append(row.rstrip())
    return "\n".join(out)


async def settle(pilot, until=lambda: True, timeout: float = 60.0) -> None:
    """Wait until no worker runs, the message queues are drained and `until()` holds."""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        busy = any(w.is_running for w in pilot.app.workers)
        if not busy and until():
            await pilot.pause()
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the UI did not settle within {timeout} s:\n{screen_text(pilot.app)}")
        await pilot.pause(0.05)


async def wait_for_text(pilot, text: str, timeout: float = 60.0) -> str:
    """Wait until `text` is on screen; returns the screen."""
    deadline = time.monotonic() + timeout
    while True:
        screen = screen_text(pilot.app)
        if text in screen:
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never appeared on screen:\n{screen}")
        await pilot.pause(0.1)
