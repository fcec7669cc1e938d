-- How far the analysis tables are (the status line; a change makes the views read again):
-- the last ingest batch they hold, the flows they hold, and a fingerprint of the flow types
-- as shown (a collector refreshes the types on their own schedule).
SELECT (SELECT coalesce(max(analyzed_through), 0) FROM analysis_progress) AS analyzed_through,
       (SELECT count(*) FROM flow_rows) AS flows,
       (SELECT hash(list((type_id, name, style) ORDER BY type_id)) FROM flow_type_rows) AS types
