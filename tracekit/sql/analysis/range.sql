-- The first and last flow start in the store.
SELECT epoch_ns(min(start_time)) AS first_ns, epoch_ns(max(start_time)) AS last_ns FROM flow_rows
