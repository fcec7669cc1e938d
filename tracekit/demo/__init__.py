"""The demo shop: real microservices, instrumented with OpenTelemetry, in both styles.

An order saga (orchestrated), a checkout whose fulfilment is choreographed through a broker,
and returns that mix both. Faults are switched on at runtime (`faults.py`) and every run records
its ground truth, so the analyzer and the reports can be scored against it. `tracekit demo`
runs it all; `tracekit demo service NAME` runs one service, as docker-compose does.
"""
