"""The help screen (?): every key, by view."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# tracekit — keys

| anywhere | |
|---|---|
| `1`–`5` | flow types · flows · failures · services · SQL |
| `w` | time window: all, last 1m / 5m / 15m / 1h of data |
| `?` | this help · `q` quit · `ctrl+p` commands (themes: dark/light) |
| `escape` | back |

| flow types, flows, failures | |
|---|---|
| `enter` | open (a type's flows, a flow) |
| `s` / `r` | sort by the next column / reverse (or click a header) |
| `/` | filter or search: trace id, order id, flow id, service, error text |
| `f` | failed flows only · `x` clear the search |
| `R` | incident report (failures view) |

| flow (waterfall) | |
|---|---|
| `↑` `↓` `pgup` `pgdn` | move |
| `enter` / `←` `→` | fold / unfold a subtree |
| `d` | span detail: attributes, resource, events, links, logs |
| `l` | follow a message link: producer → consumers, consumer → producer |
| `[` `]` (alt+← →) | back / forward along the links followed |
| `o` / `p` | jump to the failure origin / the next critical-path span |
| `R` | incident report for this flow |
| `m` / `c` | mark this flow / compare it with the marked flow, else a typical good one (also in the flows list) |

`▌` and solid bars: the critical path · `┄` broker wait · `✖ origin`: where the failure started · red: failing spans

| SQL | |
|---|---|
| `ctrl+r` / `ctrl+enter` | run |
| `ctrl+↑` `ctrl+↓` | history |
| `ctrl+e` / `ctrl+o` | export the result as CSV / Parquet next to the store |

Analysis tables: `flows`, `flow_spans`, `flow_edges`, `flow_types`, `critical_path`, `service_edges`.
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
