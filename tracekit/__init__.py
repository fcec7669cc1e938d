"""tracekit: follow distributed workflows across traces.

    import tracekit
    store = tracekit.open("tracekit.duckdb")
    store.df("SELECT service_name, count(*) FROM spans GROUP BY ALL")
"""

from tracekit.errors import TracekitError
from tracekit.store import Store, open  # noqa: A004 - tracekit.open is the public entry point

__version__ = "0.1.0"
__all__ = ["Store", "TracekitError", "open", "__version__"]
