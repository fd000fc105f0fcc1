"""The HTTP edge: Starlette app serving Rekognition's wire protocol and an operator health check."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from botocore.model import OperationModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from opsis.api.auth import KeyRing, Principal, SignedRequest
from opsis.api.errors import JSON_11, error_response
from opsis.api.limits import AdmissionBound, RateLimiter
from opsis.api.policy import check_request
from opsis.api.protocol import operation_for, parse_request, render_response
from opsis.errors import ImageTooLargeException
from opsis.ops.caller import Caller, calling_as
from opsis.ops.context import Context
from opsis.ops.registry import handler_for

log = logging.getLogger(__name__)

# What an operation wants the caller to know besides its response (e.g. a threshold raised).
WARNING_HEADER = "x-opsis-warning"


class RekognitionApp:
    """Routes requests to handlers; all blocking work runs off the event loop.

    Model inference goes through one bounded limiter (`inference_workers`), so a burst of heavy
    requests queues there while health checks and cheap errors are still answered at once. Each
    access key's request rate is limited (`rate`), and at most `inference_queue_depth` requests may
    wait for that limiter (`admission`); the rest are refused at once, as Rekognition throttles.
    """

    def __init__(self, ctx: Context, keys: KeyRing) -> None:
        self.ctx = ctx
        self.keys = keys
        self.inference = anyio.CapacityLimiter(ctx.settings.inference_workers)
        self.rate = RateLimiter(ctx.settings.rate_limit_per_second, ctx.settings.rate_limit_burst)
        self.admission = AdmissionBound(ctx.settings.inference_workers, ctx.settings.inference_queue_depth)
        self.max_skew = timedelta(seconds=ctx.settings.max_clock_skew_seconds)

    async def rekognition(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            body = await self._read_body(request)
            signed = SignedRequest(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw],
                body=body,
            )
            principal, operation, params = await anyio.to_thread.run_sync(self._authenticate_and_parse, signed)
            self.rate.check(principal.access_key_id)
            handler = handler_for(operation.name)

            caller = Caller(principal.access_key_id, request_id)

            def handle() -> Mapping[str, Any]:
                with calling_as(caller):
                    return handler(self.ctx, params)

            with self.admission.admitted():
                result = await anyio.to_thread.run_sync(handle, limiter=self.inference)
            payload = render_response(operation, result, self.ctx.settings.validate_responses)
        except Exception as error:
            return error_response(error, request_id)
        headers = {"x-amzn-RequestId": request_id}
        if caller.warnings:
            headers[WARNING_HEADER] = "; ".join(caller.warnings)
        return Response(payload, media_type=JSON_11, headers=headers)

    def _authenticate_and_parse(self, signed: SignedRequest) -> tuple[Principal, OperationModel, dict[str, Any]]:
        principal = self.keys.verify(signed, datetime.now(UTC), self.max_skew)
        operation = operation_for(dict(signed.headers).get("x-amz-target"))
        params = parse_request(operation, signed.body)
        check_request(self.ctx, principal.access_key_id, principal.policy, operation.name, params)
        return principal, operation, params

    async def _read_body(self, request: Request) -> bytes:
        """The body, refused once past the limit: only image bytes can make a request that big."""
        limit = self.ctx.settings.max_request_bytes
        too_large = ImageTooLargeException(
            f"Request body exceeds {limit} bytes; image bytes are limited to 5 MB (use S3Object for up to 15 MB)"
        )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "models": self.ctx.models.loaded()})


def create_app(ctx: Context, keys: KeyRing) -> Starlette:
    """The ASGI application: `POST /` for Rekognition calls, `GET /health` for operators."""
    app = RekognitionApp(ctx, keys)
    return Starlette(
        routes=[
            Route("/", app.rekognition, methods=["POST"]),
            Route("/health", app.health, methods=["GET"]),
        ],
        lifespan=lambda _app: _closing(ctx),
    )


@asynccontextmanager
async def _closing(ctx: Context) -> AsyncIterator[None]:
    """Closes the store when the server stops (after the requests in flight)."""
    yield
    ctx.close()
