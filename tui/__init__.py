"""The tracekit terminal UI (Textual). It reads stores through `tracekit.open`."""
