"""The analyzer: flows across traces, their edges, styles, types, critical paths and failures.

Everything here is a pure function of the spans it is given (`spans.load` reads them from a
store); nothing writes to the store. `tracekit.analysis.run.analyze(store)` runs it all.
"""
