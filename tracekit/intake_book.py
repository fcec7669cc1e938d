"""The store's account of its intake: acknowledged exports numbered as they are appended to the
intake log (`tracekit.intake`), the last one the store holds, and the log's segments released
once it holds them. The writable store owns it; docs/design/collector.md (Intake) tells why.
"""

from __future__ import annotations

from pathlib import Path

from tracekit import intake
from tracekit.otlp.batches import DecodedBatch


class IntakeBook:
    """The intake log of the store at `path`, and how far the store holds its exports."""

    def __init__(self, directory: Path, moved_through: int):
        self.log = intake.Intake(directory)
        self.moved_through = moved_through   # the last export the store holds (`intake_through`)
        # Set once: the intake thread numbers exports from here on, also while the store
        # reopens its database and reloads `moved_through`.
        self._next_seq = max(moved_through, self.log.last_seq or 0) + 1

    def accept(self, batches: list[tuple[DecodedBatch, str]]) -> intake.Accepted:
        """Append exports (each with its source) to the log and sync it: acknowledged."""
        accepted = self.log.append(self._next_seq, batches)
        self._next_seq = accepted.last_seq + 1
        return accepted

    def stored_through(self, seq: int) -> None:
        """The store holds every export up to `seq`: the segments holding only those go."""
        self.moved_through = seq
        self.log.release(seq)

    def waiting(self) -> list[intake.Export]:
        """The exports the store does not hold yet, oldest first, read from disk."""
        return list(self.log.read(self.moved_through))

    def read_back(self, through: int) -> list[intake.Export]:
        """The exports after the store's `moved_through` up to `through`, from disk: staged
        in a transaction that was rolled back."""
        if through <= self.moved_through:
            return []
        return [export for export in self.log.read(self.moved_through) if export.seq <= through]

    def close(self) -> None:
        """Close the log, and delete it if the store holds every export in it."""
        self.log.close(remove=self.moved_through >= (self.log.last_seq or 0))
