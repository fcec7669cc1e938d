-- The newest span's end (ns since the epoch): where `tracekit metrics --since` windows end.
SELECT epoch_ns(max(end_time)) FROM span_rows
