"""The tracekit error family: every message says what to do next."""


class TracekitError(Exception):
    """Base of every error tracekit raises on purpose; the CLI prints it and exits 1."""

    exit_code = 1


class StoreNotFound(TracekitError):
    """The store file does not exist."""


class StoreLocked(TracekitError):
    """Another process holds the store for writing and offers no query endpoint."""


class StoreTooNew(TracekitError):
    """The store was written by a newer tracekit."""


class QueryError(TracekitError):
    """DuckDB rejected a query (syntax, binder, permission, timeout)."""


class QueryCancelled(QueryError):
    """The query was cancelled by its caller (`Cancellation.cancel()`) before it finished."""


class ReadOnlyViolation(QueryError):
    """A query tried to write, change settings or touch files."""


class Overloaded(TracekitError):
    """The writer is behind; the caller should retry later."""

    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class WriterStopped(TracekitError):
    """The writer is shutting down or failed; nothing more is accepted."""


class DecodeError(TracekitError):
    """An OTLP payload could not be decoded at all."""


class UsageError(TracekitError):
    """A bad option value the parser could not catch; exits 2 like argparse's own errors."""

    exit_code = 2
