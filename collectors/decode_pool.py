"""The decode pool: a request is decoded in the collector's process where the compiled decoders
cover it (`decoding.decode_inline`), else in worker processes that start with
`collectors.decode_worker` and run `decoding.decode_payload` (docs/design/decoding.md)."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from collectors import decode_worker
from collectors.decoding import decode_inline, decode_payload, decode_zipkin_payload, ready
from tracekit.redaction import DEFAULT_PATTERNS

log = logging.getLogger(__name__)


class DecodePool:
    """Decoding in this process where the compiled decoders cover the request
    (`decode_inline`), else in worker processes that run `decode_payload`."""

    def __init__(self, workers: int, max_request_bytes: int,
                 redact_patterns: tuple[str, ...] = DEFAULT_PATTERNS):
        self.workers = workers
        self.max_request_bytes = max_request_bytes
        self.redact_patterns = redact_patterns
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the collector process runs gRPC threads, which fork does not copy.
        return ProcessPoolExecutor(max_workers=self.workers,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=decode_worker.start, initargs=(self.redact_patterns,))

    def warm_up(self) -> None:
        """Start every worker now rather than on the first export."""
        for future in [self._pool.submit(ready) for _ in range(self.workers)]:
            future.result()

    def submit(self, kind: str, content_type: str, encoding: str, body: bytes) -> Future:
        """Decode here if the compiled decoders cover the request, else in a worker. If a
        worker died (killed, out of memory), the pool is broken: start a new one, so one lost
        worker costs the requests in flight, not the collector."""
        if (batch := decode_inline(kind, content_type, encoding, body, self.redact_patterns)) is not None:
            decoded: Future = Future()
            decoded.set_result(batch)
            return decoded
        return self._submit(decode_payload, kind, content_type, encoding, body,
                            self.max_request_bytes, self.redact_patterns)

    def submit_zipkin(self, content_type: str, encoding: str, body: bytes,
                      keep_proxy_spans: bool) -> Future:
        """Decode a Zipkin v2 body in a worker (`decode_zipkin_payload`)."""
        return self._submit(decode_zipkin_payload, content_type, encoding, body,
                            self.max_request_bytes, self.redact_patterns, keep_proxy_spans)

    def _submit(self, *args) -> Future:
        with self._lock:
            try:
                return self._pool.submit(*args)
            except BrokenProcessPool:
                log.warning("a decode worker died; starting new decode workers")
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
                return self._pool.submit(*args)

    def pids(self) -> list[int]:
        """The worker processes' ids (for the memory guard)."""
        return list(getattr(self._pool, "_processes", None) or {})

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
