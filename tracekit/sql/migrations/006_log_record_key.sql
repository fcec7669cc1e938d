-- Schema version 6: an identity for log records, so a re-sent one is stored once.
-- A log record has no id of its own (a span has its trace and span ids): the writer hashes
-- the whole record as decoded (times, trace context, severity, body, attributes, resource,
-- scope; log_record_keys.sql) and leaves out an incoming record whose key is stored already
-- with the same timestamp (stored_log_keys.sql). Records stored before this version have no
-- key (NULL): hashing their stored form would not give the key of the record as sent (the
-- store keeps a map's keys sorted), so a re-send of one of them after the upgrade is stored
-- again, as it was before.

-- (IF NOT EXISTS: a store whose version was rewound keeps what it has, as in 005.)
ALTER TABLE log_rows ADD COLUMN IF NOT EXISTS record_key UBIGINT;
