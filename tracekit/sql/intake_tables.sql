-- The intake (see migrations/004_intake_through.sql): one row per acknowledged export, until
-- the collector has moved it into the store. Its spans, logs and resources wait in tables of
-- the decoded rows' own columns, after the export's seq (tracekit/intake.py creates them).
CREATE TABLE IF NOT EXISTS tracekit_intake.requests (
    seq             UBIGINT NOT NULL,    -- in the order they were acknowledged
    received_at     TIMESTAMPTZ NOT NULL,
    source          VARCHAR NOT NULL,
    spans           UINTEGER NOT NULL,
    logs            UINTEGER NOT NULL,
    attribute_keys  VARCHAR[]            -- the spans' top-level attribute keys
);
