-- Schema version 3: a register of the top-level keys the spans' attribute maps hold.
-- Looking up a key that no stored map has is the slowest attribute lookup there is: DuckDB
-- finds it in none of the typed columns it shreds the maps into, so it reads every map whole
-- (~2 s per million spans for each such key). Readers that try several names for one thing
-- (url.full or http.url; order.id or order_id) look up only the keys registered here.
-- The writer adds a batch's new keys in the batch's own transaction, so the register always
-- holds every stored key (deleting spans may leave keys no span has any more: that is safe).

CREATE TABLE span_attribute_keys (
    key          VARCHAR PRIMARY KEY,
    first_batch  UBIGINT NOT NULL        -- the ingest_batches row that first stored it
);

INSERT INTO span_attribute_keys
SELECT key, min(batch_id)
FROM (SELECT unnest(json_keys(attributes::JSON)) AS key, batch_id FROM span_rows)
GROUP BY key;
