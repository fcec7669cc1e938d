-- One row per type and step again, dropping steps no flow has any more.
CREATE OR REPLACE TEMP TABLE compacted AS
SELECT type_id, service_name, name, segment, sum(duration_ns) AS duration_ns
FROM flow_type_steps GROUP BY ALL HAVING sum(duration_ns) <> 0;
DELETE FROM flow_type_steps;
INSERT INTO flow_type_steps SELECT * FROM compacted;
DROP TABLE compacted;
