"""The file prompt of the SQL console's export: a path whose extension picks the format."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui.data import EXPORT_FORMATS, export_format


class ExportPrompt(ModalScreen[Path | None]):
    """Asks where to write the result; dismissed with the path, or None on escape."""

    HELP_TITLE = "export"
    AUTO_FOCUS = "#export-path"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, suggested: Path) -> None:
        super().__init__()
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box"):
            yield Static(f"Export the whole result: {', '.join(EXPORT_FORMATS)} picks the format",
                         classes="note")
            yield Input(str(self.suggested), id="export-path")
            yield Static("enter writes · escape cancels", id="export-error", classes="note")

    @on(Input.Submitted, "#export-path")
    def _submit(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        try:
            export_format(path)
        except ValueError as exc:
            self.query_one("#export-error", Static).update(f"[b red]{exc}[/]")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
