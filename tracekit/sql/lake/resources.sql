-- The resources $ids (the ones a shipment's rows name that were not shipped yet), as the
-- lake's resources table holds them.
SELECT resource_id::DECIMAL(20, 0) AS resource_id, service_name,
       attributes::JSON::VARCHAR AS attributes, first_seen, $collector_id AS collector_id
FROM resources
WHERE list_contains($ids, resource_id);
