"""tracekit: follow distributed workflows across traces.

    import tracekit
    store = tracekit.open("tracekit.duckdb")
    store.df("SELECT service_name, count(*) FROM spans GROUP BY ALL")
"""

from typing import TYPE_CHECKING

from tracekit.errors import TracekitError

if TYPE_CHECKING:
    from tracekit.store import Store, open  # noqa: A004

__version__ = "0.1.0"
__all__ = ["Store", "TracekitError", "open", "__version__"]


def __getattr__(name: str):
    # The store (and DuckDB) load on first use: processes that only decode OTLP never pay for them.
    if name in ("open", "Store"):
        from tracekit import store

        return getattr(store, name)
    raise AttributeError(f"module 'tracekit' has no attribute {name!r}")
