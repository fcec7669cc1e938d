"""Secret-looking attribute keys are masked before anything is written."""

from __future__ import annotations

import pytest

from tests.conftest import sql, start_collector
from tests.otel_clients import pipeline
from tracekit.redaction import REDACTED, Redactor

SECRET = "hunter2-do-not-store"


@pytest.mark.parametrize("key", [
    "http.request.header.authorization", "db.password", "x-csrf-token", "access_token",
    "client_secret", "api_key", "X-API-Key", "Cookie", "http.response.header.set-cookie",
    "accessToken", "clientSecret", "dbPassword",
])
def test_keys_naming_credentials_are_masked(key):
    assert Redactor()({key: SECRET}) == {key: REDACTED}


@pytest.mark.parametrize("key", [
    "gen_ai.usage.input_tokens", "tokenizer", "secretary", "http.route", "passage",
])
def test_ordinary_keys_are_kept(key):
    assert Redactor()({key: 7}) == {key: 7}


def test_maps_inside_arrays_are_masked_too():
    assert Redactor()({"headers": [{"authorization": SECRET}, "plain"]}) == {
        "headers": [{"authorization": REDACTED}, "plain"]}


def test_nested_maps_are_masked_too():
    headers = {"http.request.header": {"authorization": SECRET, "accept": "text/html"}}
    assert Redactor()(headers) == {"http.request.header": {"authorization": REDACTED, "accept": "text/html"}}


def test_secrets_never_reach_the_store(tmp_path):
    running = start_collector(tmp_path / "store.duckdb", extra=("--redact", "ssn"))
    p = pipeline("bank", "http", running.http, **{"deployment.password": SECRET})
    with p.tracer.start_as_current_span("login", attributes={
            "http.request.header.authorization": f"Bearer {SECRET}", "user.ssn": SECRET,
            "user.id": "u-1"}) as span:
        span.add_event("retry", {"session_token": SECRET})
        p.logger.info("login attempt", extra={"password": SECRET})
    p.flush()
    p.shutdown()
    try:
        [row] = sql(running.db, """
            SELECT attributes, resource_attributes, events[1].attributes AS event
            FROM spans WHERE service_name = 'bank'""")
        assert row["attributes"]["http.request.header.authorization"] == REDACTED
        assert row["attributes"]["user.ssn"] == REDACTED       # the --redact pattern
        assert row["attributes"]["user.id"] == "u-1"
        assert row["resource_attributes"]["deployment.password"] == REDACTED
        assert row["event"]["session_token"] == REDACTED
        [log] = sql(running.db, "SELECT attributes FROM logs WHERE service_name = 'bank'")
        assert log["attributes"]["password"] == REDACTED
    finally:
        assert running.stop() == 0
    for path in tmp_path.glob("store.duckdb*"):
        assert SECRET.encode() not in path.read_bytes(), f"{path.name} holds the secret"
