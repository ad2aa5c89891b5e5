"""Per-request operations: request id bound for logging, one access-log line, request metrics, per-user rate limit.

Rate-limit state is in process memory: exact for one server process, lost on restart (a restart forgives
everyone, which is fine for a per-minute window). Several nodes or worker processes would each count on
their own, so the effective limit would be multiplied; a deployment that needs one shared limit should
enforce it at the reverse proxy (or move `SlidingWindowLimiter` onto Redis) rather than here.
Concurrent runs per user are limited by the `RunManager` (same in-process caveat); its 429 gets a
`Retry-After` here like every other 429.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.openai_errors import error_body, is_v1
from backend.core.logging import bind_request, request_id_var
from backend.core.metrics import record_rate_limited, record_request
from backend.core.security import InvalidTokenError, decode_token
from backend.core.settings import Settings

access_log = logging.getLogger("backend.access")

WINDOW_SECONDS = 60.0
MAX_TRACKED_KEYS = 50_000
"""Clients remembered by the limiter; beyond this, idle ones are forgotten first, then the oldest."""
RUN_RETRY_AFTER_SECONDS = 10
"""`Retry-After` for a 429 the app raised itself (runs in flight): a turn usually frees a slot in seconds."""
EXEMPT_PATHS = frozenset({"/api/health", "/metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"})
"""Never rate limited: health probes, the metrics scraper and the API docs."""
HTTP_BAD_REQUEST = 400
UNMATCHED_ROUTE = "unmatched"
"""Route label for requests no route matched (keeps label values bounded whatever paths clients try)."""

Clock = Callable[[], float]


class SlidingWindowLimiter:
    """At most `limit` hits per key in any `window` seconds (exact sliding log; O(limit) memory per key)."""

    def __init__(self, *, limit: int, window: float = WINDOW_SECONDS, clock: Clock = time.monotonic,
                 max_keys: int = MAX_TRACKED_KEYS) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> float:
        """Count a hit and return 0, or return the seconds until `key` may try again (the hit is not counted)."""
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            self._make_room(now)
            hits = self._hits[key] = deque(maxlen=self.limit)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(hits[0] + self.window - now, 0.001)
        hits.append(now)
        return 0.0

    def _make_room(self, now: float) -> None:
        if len(self._hits) < self._max_keys:
            return
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
            del self._hits[key]
        while len(self._hits) >= self._max_keys:
            del self._hits[next(iter(self._hits))]


def client_key(scope: Scope, settings: Settings) -> tuple[str, str | None]:
    """(limiter key, user id): the token's user when it carries a valid access token, else the client address.

    API keys count by address too: checking one needs the database, and keying on an unchecked key would let
    anyone sending random keys escape the limit."""
    authorization = Headers(scope=scope).get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            user_id = decode_token(token.strip(), kind="access", settings=settings).subject
        except InvalidTokenError:
            user_id = None
        if user_id:
            return f"user:{user_id}", user_id
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}", None


def route_label(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return str(path) if path else UNMATCHED_ROUTE


class OperationsMiddleware:
    """Binds the request id (set by `RequestIdMiddleware`, outside this one) to the logging context, refuses
    clients over `rate_limit_per_minute`, adds `Retry-After` to every 429, logs and counts each request."""

    def __init__(self, app: ASGIApp, *, settings: Settings, clock: Clock = time.monotonic) -> None:
        self.app = app
        self.settings = settings
        self.limiter = SlidingWindowLimiter(limit=settings.rate_limit_per_minute, clock=clock)
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = str(state.get("request_id") or uuid.uuid4().hex)
        state["request_id"] = request_id
        token = bind_request(request_id)
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        key, user_id = client_key(scope, self.settings)
        status = 500
        try:
            wait = 0.0 if method == "OPTIONS" or path in EXEMPT_PATHS else self.limiter.hit(key)
            if wait:
                status = 429
                record_rate_limited(limit="requests_per_minute")
                await self._refuse(scope, receive, send, wait)
                return

            async def observe(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    if status == 429:
                        headers = MutableHeaders(scope=message)
                        if "retry-after" not in headers:
                            headers["Retry-After"] = str(RUN_RETRY_AFTER_SECONDS)
                            record_rate_limited(limit="runs_in_flight")
                await send(message)

            await self.app(scope, receive, observe)
        finally:
            seconds = time.perf_counter() - started
            route = route_label(scope) if status != 429 or "route" in scope else self._template(scope)
            record_request(method=method, route=route, status=status, seconds=seconds)
            quiet = path in EXEMPT_PATHS and status < HTTP_BAD_REQUEST  # health polls and scrapes: DEBUG only
            access_log.log(logging.DEBUG if quiet else logging.INFO, "%s %s %d %.1fms", method, path, status,
                           seconds * 1000,
                           extra={"method": method, "path": path, "route": route, "status": status,
                                  "duration_ms": round(seconds * 1000, 1), "user_id": user_id})
            with contextlib.suppress(ValueError):  # only if a child context swallowed the reset token
                request_id_var.reset(token)

    def _template(self, scope: Scope) -> str:
        """For a request refused before routing: the route template it would have hit (from the OpenAPI paths)."""
        if self._templates is None:
            openapi = getattr(scope.get("app"), "openapi", None)
            paths: dict[str, object] = openapi().get("paths", {}) if openapi is not None else {}
            self._templates = [(compile_path(path)[0], path) for path in paths]
        return next((path for regex, path in self._templates if regex.match(scope["path"])), UNMATCHED_ROUTE)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, wait: float) -> None:
        limit = self.settings.rate_limit_per_minute
        message = f"rate limit exceeded: {limit} requests per minute; retry in {math.ceil(wait)} s"
        response = JSONResponse(
            error_body(message, status_code=429) if is_v1(scope["path"]) else {"detail": message},
            status_code=429,
            headers={"Retry-After": str(math.ceil(wait))},
        )
        await response(scope, receive, send)

