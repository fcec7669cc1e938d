"""The base of the views that show the stored analysis of a time window: they read it again
when the window or the analysis changes, and only while they are on screen."""

from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static
from textual.worker import get_current_worker


class WindowedView(Vertical):
    """Subclasses name their note (`NOTE`) and read in `load()`, a worker."""

    NOTE = ""

    def __init__(self) -> None:
        super().__init__()
        self.revision: tuple | None = None      # the analysis tables' (None: not readable yet)
        self.window: tuple[int, int] | None = None
        self._loaded = None       # the state last read

    def show(self, revision: tuple | None, window: tuple[int, int] | None) -> None:
        """The analysis and the window to show (set together: one read when both change)."""
        self.revision, self.window = revision, window
        self.changed()

    def state(self) -> tuple:
        """What the view shows depends on (subclasses add their own settings)."""
        return (self.revision, self.window)

    def load(self) -> None:
        raise NotImplementedError

    def changed(self) -> None:
        """Read again if what is shown is out of date and on screen."""
        if self.revision is None or not self.on_screen_tab() or self._loaded == self.state():
            return
        self._loaded = self.state()
        self.load()

    def on_screen_tab(self) -> bool:
        pane = self.parent
        return pane is not None and self.app.query_one("#views").active == pane.id

    def shown(self) -> None:
        """The user switched to this view."""
        self.changed()

    def deliver(self, fill, *args) -> None:
        """From a worker: hand its result to the UI thread, unless a newer read replaced it."""
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(fill, *args)

    def failed(self, exc: Exception) -> None:
        """From a worker: say in the view's note that the read failed."""
        self.deliver(self._failed, f"{type(exc).__name__}: {exc}")

    def _failed(self, error: str) -> None:
        self._loaded = None       # the next change or visit tries again
        self.query_one(self.NOTE, Static).update(Text(error, style="bold red"))
