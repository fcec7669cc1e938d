"""The store's register of span attribute keys: it holds every key a stored span has, whichever
decoder read the span, and the analyzer reads the same columns with it as without it (only
faster: it does not look up keys no span has)."""

from __future__ import annotations

import tracekit
from tests.otlp_payloads import otlp_json, trace_request
from tracekit.analysis.spans import (DEFAULT_BUSINESS_KEYS, load_arrow, spans_sql,
                                     only_stored, stored_keys)
from tracekit.otlp.columns import DEFAULT_REDACTOR
from tracekit.otlp.decode import decode_traces
from tracekit.otlp.fast_decode import decode_traces_fast
from tracekit.otlp.json_decode import decode_traces_json


def with_attributes(n: int, **attributes) -> "trace_request":
    request = trace_request(n, service="keys")
    for span in request.resource_spans[0].scope_spans[0].spans:
        for key, value in attributes.items():
            kv = span.attributes.add()
            kv.key, kv.value.string_value = key, value
    return request


def keys_in_spans(reader) -> set[str]:
    return set(reader.df("SELECT DISTINCT unnest(json_keys(attributes::JSON)) AS k FROM spans")["k"])


def test_the_register_holds_every_key_of_the_stored_spans_whichever_decoder_read_them(tmp_path):
    compiled = with_attributes(2, **{"url.full": "http://a/b"})
    python = with_attributes(2, **{"order_id": "o-1", "url.full": "http://a/c"})
    json = with_attributes(2, **{"business.key": "k-1"})
    batches = [decode_traces_fast(compiled.SerializeToString(), DEFAULT_REDACTOR),
               decode_traces(python), decode_traces_json(otlp_json(json))]
    assert batches[0] is not None, "the compiled decoder stepped aside"
    store = tracekit.open(tmp_path / "s.duckdb", write=True)
    ids = [store.append(batch, "test").batch_id for batch in batches]
    store.close()
    with tracekit.open(tmp_path / "s.duckdb") as reader:
        register = dict(reader.df("SELECT key, first_batch FROM span_attribute_keys")
                        .itertuples(index=False))
        assert set(register) == keys_in_spans(reader) == {"i", "url.full", "order_id", "business.key"}
    assert register == {"i": ids[0], "url.full": ids[0], "order_id": ids[1], "business.key": ids[2]}


def test_a_store_written_before_the_register_gets_it_filled_from_its_spans(tmp_path):
    path = tmp_path / "s.duckdb"
    store = tracekit.open(path, write=True)
    store.append(decode_traces(with_attributes(3, **{"order.id": "o-7"})), "test")
    # Back to schema version 2, as an older tracekit left it.
    store.conn.execute("DROP TABLE span_attribute_keys")
    store.conn.execute("ALTER TABLE ingest_batches DROP COLUMN intake_through")
    store.conn.execute("DELETE FROM schema_version WHERE version >= 3")
    store.close()
    with tracekit.open(path) as reader:      # read-only: not migrated, no register
        assert stored_keys(reader) == (None, None)
        without = load_arrow(reader)
    tracekit.open(path, write=True).close()  # the writer migrates
    with tracekit.open(path) as reader:
        keys, upto = stored_keys(reader)
        assert keys == {"i", "order.id"} and upto == 1
        assert load_arrow(reader).equals(without)
        assert set(load_arrow(reader)["business_key"].to_pylist()) == {"o-7"}


def test_the_analyzer_reads_the_same_columns_with_the_register_as_without(tmp_path):
    path = tmp_path / "s.duckdb"
    store = tracekit.open(path, write=True)
    store.append(decode_traces(with_attributes(3, **{"http.url": "http://old/"})), "test")
    store.append(decode_traces(with_attributes(2, **{"order_id": "o-2", "url.full": "http://new/"})),
                 "test")
    store.close()
    sql = spans_sql(DEFAULT_BUSINESS_KEYS)
    params = {"as_of": 2**62, "since_batch": 0, "upto_batch": 2**62}
    with tracekit.open(path) as reader:
        keys, _ = stored_keys(reader)
        assert only_stored(sql, keys) != sql          # some lookups are left out...
        every_lookup = reader.arrow(sql, params)
        with_register = load_arrow(reader)
    assert with_register.equals(every_lookup)      # ...and nothing read changes
    columns = with_register.select(["url", "business_key"]).to_pylist()
    assert sorted(columns, key=str) == sorted(
        [{"url": "http://old/", "business_key": None}] * 3
        + [{"url": "http://new/", "business_key": "o-2"}] * 2, key=str)

