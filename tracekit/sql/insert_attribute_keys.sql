-- Attribute keys this batch's spans hold that the register lacks ($keys: VARCHAR[]).
INSERT OR IGNORE INTO span_attribute_keys
SELECT unnest($keys::VARCHAR[]), $batch_id;
