"""The help screen (? or f1): the keys bound where the focus is, read from Textual's own
binding chain when it opens, so it lists what works here and nothing else."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# Titles for Textual's own widgets in the chain; tracekit's widgets name themselves (HELP_TITLE).
BUILT_IN_TITLES = {"DataTable": "list", "Input": "text box", "TextArea": "editor",
                   "Tree": "table list", "OptionList": "choices", "Screen": "screen"}


def key_sections(app, active_bindings) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(keys, what they do)]) for each node of the binding chain that binds a key:
    tracekit's own from the focused one out, then Textual's widgets' (a list's arrows...);
    keys doing the same thing are listed together."""
    sections: dict[int, tuple[str, dict[str, tuple[list[str], str]]]] = {}
    own: set[int] = set()
    for active in active_bindings.values():
        binding = active.binding
        if not active.enabled or binding.system or not binding.description:
            continue
        node = active.node
        title = getattr(node, "HELP_TITLE", None)
        if title:
            own.add(id(node))
        else:
            title = BUILT_IN_TITLES.get(type(node).__name__, type(node).__name__)
        _, rows = sections.setdefault(id(node), (title, {}))
        keys, text = rows.get(binding.action, ([], ""))
        said = binding.tooltip or binding.description
        rows[binding.action] = ([*keys, app.get_key_display(binding)], max(text, said, key=len))
    order = sorted(sections, key=lambda node: node not in own)     # stable: chain order kept
    return [(sections[node][0], [(" ".join(keys), text) for keys, text in sections[node][1].values()])
            for node in order]


def render(sections) -> Group:
    """Two columns per section: the keys, what they do."""
    parts = [Text("Keys here", style="bold")]
    for title, rows in sections:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", min_width=14, no_wrap=True)
        table.add_column()
        for keys, description in rows:
            table.add_row(keys, description)
        parts += [Text(""), Text(title, style="bold underline"), table]
    parts += [Text(""), Text("The mouse works too: click a tab, a row, a column header (sorts), "
                             "a span. Escape or ? closes this.", style="dim")]
    return Group(*parts)


class HelpScreen(ModalScreen):
    """The keys of the screen below, as they were bound when help was asked for."""

    BINDINGS = [Binding("escape,question_mark,f1,q", "app.pop_screen", "Close")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(render(self.sections), id="help-keys")
