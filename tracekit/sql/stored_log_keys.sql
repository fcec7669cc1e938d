-- The keys of the registered Arrow table `incoming_log_keys` (log records of a batch) that are
-- stored already: a client re-sent them after losing an acknowledgement; nearly always none.
-- A re-sent record has the same timestamp, so only stored rows whose timestamp falls in the
-- batch's range ($first .. $last) are read (zone maps prune the rest), and an inner join lets
-- DuckDB build its hash table on the few thousand incoming keys (as stored_spans.sql does).
SELECT DISTINCT stored.record_key
FROM log_rows AS stored
JOIN incoming_log_keys AS i USING ("timestamp", record_key)
WHERE stored."timestamp" BETWEEN make_timestamp_ns($first) AND make_timestamp_ns($last);
