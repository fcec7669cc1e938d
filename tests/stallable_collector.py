"""`tracekit collect` with a writer that stalls on command, as when the disk stops answering.

    python -m tests.stallable_collector --db PATH [collect options]

Reads "stall" and "resume" lines on stdin and answers "stalled" / "resumed" on stdout once
the writer has stopped committing / may commit again. Everything else is the real collector.
"""

from __future__ import annotations

import sys
import threading

from tracekit import writer as writer_module
from tracekit.cli import main

gate = threading.Event()
gate.set()
_commit = writer_module.Writer._commit


def _gated_commit(self, taken):
    gate.wait()
    _commit(self, taken)


def _commands() -> None:
    for line in sys.stdin:
        command = line.strip()
        if command == "stall":
            gate.clear()
            print("stalled", flush=True)
        elif command == "resume":
            gate.set()
            print("resumed", flush=True)


if __name__ == "__main__":
    writer_module.Writer._commit = _gated_commit
    threading.Thread(target=_commands, daemon=True).start()
    sys.exit(main(["collect", *sys.argv[1:]]))
