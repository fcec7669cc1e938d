-- One flow as the analysis tables hold it ($flow_id), with its type's name and its status now.
SELECT flow_id, epoch_ns(start_time) AS start_ns, epoch_ns(end_time) AS end_ns, duration_ms, status, style, async_share,
       sync_hops, async_hops, coordinator, type_name, business_key, traces, services,
       missing_steps, retries, timeouts, fast_fails, compensations, dead_letters, skew_adjusted
FROM flows WHERE flow_id = $flow_id
