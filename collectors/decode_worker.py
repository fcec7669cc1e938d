"""What a decode worker process runs first, before it imports the decoders.

pyarrow imports pandas the first time it turns a Python sequence into an array (to ask
whether it is a pandas object), and a decode worker never needs pandas: it cost the worker
~45 MiB of resident memory and 0.75 s of its start. So the worker refuses to import pandas,
which pyarrow takes to mean that there is none. The collector's own process keeps it (SQL on
the analysis tables uses it).
"""

from __future__ import annotations

import importlib.abc
import sys


class _WithoutPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("a decode worker does not load pandas", name=name)
        return None


def start(redact_patterns: tuple[str, ...]) -> None:
    """The decode pool's initializer."""
    sys.meta_path.insert(0, _WithoutPandas())
    from collectors.decoding import start_worker

    start_worker(redact_patterns)
