-- The columns the analyzer needs, one row per span started before $as_of and committed in a
-- batch after $since_batch and up to $upto_batch (batch ids grow with every commit; the upper
-- bound is the last batch the register of attribute keys was read at, see spans.py).
-- {business_key}: coalesce over the configured business-key attributes (VARIANT keys must be
-- constants, so they are written in; spans.py allows only attribute-name characters).
SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind,
       epoch_ns(s.start_time) AS start_ns, epoch_ns(s.end_time) AS end_ns,
       s.status_code, s.status_message, s.service_name,
       coalesce(r.attributes['host.name']::VARCHAR, s.service_name) AS host,
       s.attributes['messaging.message.id']::VARCHAR AS message_id,
       coalesce(s.attributes['messaging.rabbitmq.destination.routing_key'],
                s.attributes['messaging.destination.name'])::VARCHAR AS destination,
       {business_key} AS business_key,
       coalesce(s.attributes['http.response.status_code'],
                s.attributes['http.status_code'])::INTEGER AS http_status,
       s.attributes['rpc.grpc.status_code']::INTEGER AS grpc_status,
       coalesce(s.attributes['url.full'], s.attributes['http.url'])::VARCHAR AS url,
       coalesce(s.attributes['http.request.method'], s.attributes['http.method'])::VARCHAR AS method,
       -- Whom a client span called (what names the callee when no server span arrived).
       s.attributes['peer.service']::VARCHAR AS peer_service,
       coalesce(s.attributes['server.address'], s.attributes['net.peer.name'])::VARCHAR AS server_address,
       s.attributes['rpc.service']::VARCHAR AS rpc_service,
       s.attributes['error.type']::VARCHAR AS error_type,
       s.attributes['circuit_breaker.state']::VARCHAR AS breaker_state,
       s.attributes['circuit_breaker.name']::VARCHAR AS breaker_name,
       s.attributes['http.request.resend_count']::INTEGER AS resend_count,
       s.attributes['saga.compensation']::BOOLEAN AS compensation,
       s.attributes['messaging.rabbitmq.dead_letter.queue']::VARCHAR AS dead_letter_from,
       list_filter(s.events, lambda e: e.name = 'exception')[1].attributes['exception.type']::VARCHAR
           AS exception_type,
       list_filter(s.events, lambda e: e.name = 'exception')[1].attributes['exception.message']::VARCHAR
           AS exception_message,
       list_transform(s.links, lambda l: l.trace_id || ':' || l.span_id) AS links,
       s.batch_id
FROM span_rows AS s LEFT JOIN resources AS r USING (resource_id)
WHERE s.start_time < make_timestamp_ns($as_of) {scope}
  AND s.batch_id > $since_batch AND s.batch_id <= $upto_batch
