-- The flows an identifier names: the flow of that id; else the flows holding a trace of that
-- id or a span with that business key; else the flows whose id starts with it.
SELECT DISTINCT flow_id FROM (
    SELECT flow_id, 1 AS tier FROM flow_rows WHERE flow_id = $ident
    UNION ALL SELECT flow_id, 2 FROM flow_traces WHERE trace_id = $ident
    UNION ALL SELECT flow_id, 2 FROM flow_business_keys WHERE business_key = $ident
    UNION ALL SELECT flow_id, 3 FROM flow_rows WHERE starts_with(flow_id, $ident)
)
QUALIFY tier = min(tier) OVER ()
ORDER BY flow_id
