-- Resources first seen in this batch (registered Arrow table `incoming_resources`).
INSERT OR IGNORE INTO resources
SELECT resource_id, service_name, attributes::JSON, now() FROM incoming_resources;
