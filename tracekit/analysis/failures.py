"""Which spans failed, and which failure started it."""

from __future__ import annotations

import numpy as np
import pandas as pd

GRPC_SERVER_ERRORS = {2, 4, 12, 13, 14, 15}   # UNKNOWN DEADLINE_EXCEEDED UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS


def is_error(spans: pd.DataFrame) -> pd.Series:
    """Status ERROR, an exception event, `error.type` (the semantic conventions set it only
    when the operation failed), HTTP >= 500 (>= 400 on clients), or a gRPC error code."""
    http = spans["http_status"].fillna(0)
    client = spans["kind"] == "CLIENT"
    grpc = spans["grpc_status"].fillna(0)
    return ((spans["status_code"] == "ERROR") | spans["exception_type"].notna()
            | spans["error_type"].notna()
            | (http >= 500) | (client & (http >= 400))
            | np.where(spans["kind"] == "SERVER", grpc.isin(GRPC_SERVER_ERRORS), grpc > 0))
