"""Optional bearer-token authentication for both receivers.

The token is compared in constant time and checked before a body is read, inflated or
parsed; a refused request stores nothing, and the token is never logged.
"""

from __future__ import annotations

import hmac

import grpc

UNAUTHENTICATED_MESSAGE = "missing or wrong bearer token: send 'Authorization: Bearer <token>'"


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an Authorization header value carries the token (always, without a token)."""
    if token is None:
        return True
    return hmac.compare_digest((header or "").encode(), f"Bearer {token}".encode())


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses gRPC calls without the token before their handler runs."""

    def __init__(self, token: str):
        self.token = token

        def refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)

        self._refusal = grpc.unary_unary_rpc_method_handler(refuse)

    def intercept_service(self, continuation, handler_call_details):
        header = next((value for key, value in handler_call_details.invocation_metadata or ()
                       if key == "authorization"), None)
        if authorized(header, self.token):
            return continuation(handler_call_details)
        return self._refusal
