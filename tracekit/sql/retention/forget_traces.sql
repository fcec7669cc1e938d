-- The traces whose spans are about to be deleted, for the analysis to forget or re-analyze
-- their flows (tracekit.analysis.persist).
INSERT INTO analysis_forget
SELECT DISTINCT trace_id FROM span_rows WHERE batch_id > $after AND batch_id <= $through;
