-- The flows.sql condition for a search by identifier: a flow id (or its start), a trace id,
-- a business key or a service.
AND flow_id IN (
    SELECT flow_id FROM flow_rows WHERE starts_with(flow_id, $search)
    UNION SELECT flow_id FROM flow_traces WHERE trace_id = lower($search)
    UNION SELECT flow_id FROM flow_business_keys WHERE business_key = $search
    UNION SELECT flow_id FROM flow_rows WHERE list_contains(services, $search))
