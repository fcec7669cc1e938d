"""Two flows compared (`c` on a flow): what A did differently from B, B being the flow marked
with `m` or else a typical good flow of A's type."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from tracekit.analysis.compare import Comparison
from tracekit.analysis.compare_text import headline, sections

# How each section's lines are coloured.
STYLES = {"errors": "red", "only_in_a": "yellow", "only_in_b": "cyan"}


@dataclass
class ComparisonLoaded(Message):
    """The comparison read and computed (or why it could not be)."""

    comparison: Comparison | None
    picked: str | None = None
    error: str | None = None


class CompareScreen(Screen):
    """Flow `a` against flow `b` (None: a typical good flow picked for it)."""

    HELP_TITLE = "comparison"
    AUTO_FOCUS = "#compare-body"
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("question_mark", "app.help", "Help"),
        Binding("f1", "app.help", "Help", show=False),
    ]

    def __init__(self, a: str, b: str | None = None) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.comparison: Comparison | None = None

    def compose(self) -> ComposeResult:
        against = f"flow {self.b}" if self.b else "a typical good flow"
        yield Static(f" comparing flow {self.a} with {against}…", id="compare-header")
        with VerticalScroll(id="compare-body"):
            yield Static("", id="compare-sections")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def load(self) -> None:
        from tracekit.analysis.flow_sides import compare_flows

        try:
            with self.app.open_store() as store:
                loaded = ComparisonLoaded(*compare_flows(store, self.a, self.b))
        except Exception as exc:
            loaded = ComparisonLoaded(None, error=f"{type(exc).__name__}: {exc}")
        self.post_message(loaded)

    @on(ComparisonLoaded)
    def _loaded(self, message: ComparisonLoaded) -> None:
        header = self.query_one("#compare-header", Static)
        if message.comparison is None:
            header.update(Text(f" {message.error}", style="bold red"))
            return
        self.comparison = c = message.comparison
        top = Text()
        for i, line in enumerate(headline(c, message.picked)):
            top.append(("\n" if i else "") + " " + line, style="bold" if i < 2 else "")
        header.update(top)
        body = Text()
        for name, title, lines in sections(c):
            body.append(f"{title}" + ("" if lines else ": none") + "\n", style="bold underline")
            for line in lines:
                body.append(f"  {line}\n", style=STYLES.get(name, ""))
            body.append("\n")
        self.query_one("#compare-sections", Static).update(body)
