"""The filter box above a list: escape hands the keys back to the list."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterInput(Input):
    """An Input that posts `Left` on escape; the view owning it focuses its list."""

    HELP_TITLE = "filter box"
    BINDINGS = [Binding("escape", "leave", "Back to the list")]

    class Left(Message):
        """The user left the filter box with escape."""

        def __init__(self, filter_input: FilterInput) -> None:
            super().__init__()
            self.filter_input = filter_input

        @property
        def control(self) -> FilterInput:
            return self.filter_input

    def action_leave(self) -> None:
        self.post_message(self.Left(self))
