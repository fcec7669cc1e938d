-- Schema version 4: how far the collector has moved its intake into the store.
-- A collector acknowledges an export once it is committed to its intake, a second DuckDB file
-- beside the store (<store>.intake), and moves acknowledged exports from there into span_rows
-- and log_rows in larger transactions of its own (docs/design/collector.md, "The intake"). The
-- batch row of a move holds the last intake sequence number it stored, in the move's own
-- transaction, so after a crash between a move and the intake's cleanup nothing is moved
-- twice. (An append-only record: an UPDATE of a progress row made DuckDB refuse checkpoints
-- while any other transaction, such as the intake's next commit, was open.)

ALTER TABLE ingest_batches ADD COLUMN intake_through UBIGINT;   -- NULL: not from the intake
