-- How far the analysis tables are: the last batch analyzed, the last batch stored, the spans
-- in the batches between, and the traces retention deleted that the analysis has yet to forget.
WITH through AS (
    SELECT coalesce(max(analyzed_through), 0) AS batch FROM analysis_progress
)
SELECT (SELECT batch FROM through),
       (SELECT coalesce(max(batch_id), 0) FROM ingest_batches),
       (SELECT coalesce(sum(spans), 0) FROM ingest_batches
        WHERE batch_id > (SELECT batch FROM through)),
       (SELECT count(*) FROM analysis_forget)
