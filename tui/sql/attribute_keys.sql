-- The register of the spans' attribute keys (tracekit/sql/migrations/003_span_attribute_keys.sql),
-- for the SQL console's completion of attributes['…'].
SELECT key FROM span_attribute_keys ORDER BY key
