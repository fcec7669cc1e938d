-- What the demo shop recorded about itself: OTLP log records of the scope
-- tracekit.demo.ground_truth (service tracekit-demo), read back as tables. The analyzer and
-- the reports are scored against these.

CREATE VIEW demo_ground_truth AS
SELECT "timestamp",
       attributes['tracekit.demo.event']::VARCHAR     AS event,
       attributes['tracekit.demo.run_id']::VARCHAR    AS run_id,
       attributes['tracekit.demo.scenario']::VARCHAR  AS scenario,
       attributes['tracekit.demo.service']::VARCHAR   AS service,
       attributes['tracekit.demo.operation']::VARCHAR AS operation,
       attributes['tracekit.demo.description']::VARCHAR AS description,
       attributes['tracekit.demo.order_id']::VARCHAR  AS order_id,
       attributes['tracekit.demo.kind']::VARCHAR      AS kind,
       attributes['tracekit.demo.root_trace_id']::VARCHAR AS root_trace_id,
       trace_id, span_id
FROM logs
WHERE scope_name = 'tracekit.demo.ground_truth';

-- One row per scenario run: when it was switched on and off, where its fault is injected.
CREATE VIEW demo_scenarios AS
SELECT run_id,
       any_value(scenario)                                  AS scenario,
       any_value(service) FILTER (event = 'scenario.start')   AS service,
       any_value(operation) FILTER (event = 'scenario.start') AS operation,
       any_value(description) FILTER (event = 'scenario.start') AS description,
       min("timestamp") FILTER (event = 'scenario.start')     AS started_at,
       max("timestamp") FILTER (event = 'scenario.end')       AS ended_at
FROM demo_ground_truth
WHERE event IN ('scenario.start', 'scenario.end')
GROUP BY run_id;

-- One row per injected fault, in the span where it was injected (trace_id, span_id).
CREATE VIEW demo_faults AS
SELECT "timestamp", scenario, service, operation, order_id, trace_id, span_id
FROM demo_ground_truth
WHERE event = 'fault';

-- One row per flow the traffic generator started: its business key, workflow and root trace.
CREATE VIEW demo_flows AS
SELECT "timestamp", order_id, kind,
       CASE kind WHEN 'order' THEN 'orchestrated' WHEN 'checkout' THEN 'choreographed'
                 ELSE 'hybrid' END AS style,
       scenario, root_trace_id
FROM demo_ground_truth
WHERE event = 'flow';
