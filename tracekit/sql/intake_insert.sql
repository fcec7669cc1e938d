-- Acknowledge exports: one row for each in the registered Arrow table `accepted`.
INSERT INTO tracekit_intake.requests
SELECT seq, now(), source, spans, logs, attribute_keys
FROM accepted;
