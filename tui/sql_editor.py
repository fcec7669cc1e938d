"""The SQL console's editor: SQL highlighting (tree-sitter, when installed) and the keys of a
completion list shown under it; the console owns the list and what it offers."""

from __future__ import annotations

import importlib.util

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

# tree-sitter-sql is a dependency; without it (a trimmed install) the editor stays plain.
SQL_HIGHLIGHTING = importlib.util.find_spec("tree_sitter_sql") is not None
COMPLETION_KEYS = ("up", "down", "tab", "enter", "escape", "pageup", "pagedown")


class SqlEditor(TextArea):
    """A TextArea for SQL. While `completing` (set by the console) the completion keys go to
    the console as `CompletionKey`; escape otherwise hands the keys to the result grid."""

    HELP_TITLE = "SQL editor"
    BINDINGS = [
        Binding("ctrl+space", "complete", "Complete", tooltip="Complete a table, column or attributes['key']"),
        Binding("escape", "leave", "Leave", tooltip="Leave the editor for the result (then 1-5 switch views)"),
    ]

    completing = False

    class CompletionKey(Message):
        """A key for the completion list on screen."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class CompletionWanted(Message):
        """The word before the cursor changed by typing (or ctrl+space asked: `forced`)."""

        def __init__(self, forced: bool) -> None:
            super().__init__()
            self.forced = forced

    class Left(Message):
        """Escape: the user is done editing."""

    def __init__(self, text: str, **kwargs) -> None:
        super().__init__(text, language="sql" if SQL_HIGHLIGHTING else None,
                         show_line_numbers=False, soft_wrap=True, **kwargs)

    @property
    def text_before_cursor(self) -> str:
        return self.get_text_range((0, 0), self.cursor_location)

    async def _on_key(self, event: events.Key) -> None:
        if self.completing and event.key in COMPLETION_KEYS:
            event.stop()
            event.prevent_default()
            self.post_message(self.CompletionKey(event.key))
            return
        await super()._on_key(event)
        if event.is_printable:
            self.post_message(self.CompletionWanted(False))

    def action_delete_left(self) -> None:
        super().action_delete_left()
        if self.completing:
            self.post_message(self.CompletionWanted(False))

    def action_complete(self) -> None:
        self.post_message(self.CompletionWanted(True))

    def action_leave(self) -> None:
        self.post_message(self.Left())
