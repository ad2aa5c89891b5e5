"""Prometheus metrics of this process: one registry and small `record_*` hooks the other rooms call in one line.

The registry is per process. Run one server process per node (the in-process rate limits assume it too);
with several worker processes each would expose only its own figures.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from backend.core.logging import bind_run, log_llm_exchange

NAMESPACE = "analysis"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LONG_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)
"""Agent turns and model calls take seconds to minutes on a CPU."""
RUN_STATUSES = frozenset({"done", "failed", "cancelled", "timeout"})
"""Run outcomes kept as label values; anything else is counted as `failed` (bounded label cardinality)."""
SANDBOX_KILLS = frozenset({"timeout", "memory", "output", "crash"})

sandbox_log = logging.getLogger("backend.sandbox.runs")

P = ParamSpec("P")
T = TypeVar("T")

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter("http_requests", "HTTP requests by route template and status.",
                        ["method", "route", "status"], namespace=NAMESPACE, registry=REGISTRY)
HTTP_LATENCY = Histogram("http_request_duration_seconds", "Time to the end of the response (SSE: whole stream).",
                         ["method", "route"], namespace=NAMESPACE, registry=REGISTRY, buckets=LATENCY_BUCKETS)
RATE_LIMITED = Counter("rate_limited", "Requests refused with 429, by limit (requests per minute / runs in flight).",
                       ["limit"], namespace=NAMESPACE, registry=REGISTRY)
RUNS = Counter("agent_runs", "Finished agent turns by strategy and status.", ["strategy", "status"],
               namespace=NAMESPACE, registry=REGISTRY)
RUN_DURATION = Histogram("agent_run_duration_seconds", "Agent turn wall time by strategy.", ["strategy"],
                         namespace=NAMESPACE, registry=REGISTRY, buckets=LONG_BUCKETS)
RUNS_IN_FLIGHT = Gauge("agent_runs_in_flight", "Agent turns running now.", namespace=NAMESPACE, registry=REGISTRY)
LLM_CALLS = Counter("llm_calls", "Model calls (retries included) by provider and outcome.", ["provider", "outcome"],
                    namespace=NAMESPACE, registry=REGISTRY)
LLM_LATENCY = Histogram("llm_call_duration_seconds", "Duration of successful model calls.", ["provider"],
                        namespace=NAMESPACE, registry=REGISTRY, buckets=LONG_BUCKETS)
LLM_TOKENS = Counter("llm_tokens", "Tokens the providers reported using (providers that report no usage add none).",
                     ["provider", "kind"], namespace=NAMESPACE, registry=REGISTRY)
LLM_FAILOVERS = Counter("llm_failovers", "Times the chain passed over a provider, by reason.", ["provider", "reason"],
                        namespace=NAMESPACE, registry=REGISTRY)
SANDBOX_RUNS = Counter("sandbox_runs", "Sandboxed code runs by outcome (ok, error, blocked, timeout, memory, ...).",
                       ["outcome"], namespace=NAMESPACE, registry=REGISTRY)
SANDBOX_KILLED = Counter("sandbox_kills", "Sandboxed runs killed, by reason (timeout, memory, output, crash).",
                         ["reason"], namespace=NAMESPACE, registry=REGISTRY)
SANDBOX_DURATION = Histogram("sandbox_run_duration_seconds", "Sandboxed code run wall time.", namespace=NAMESPACE,
                             registry=REGISTRY, buckets=LONG_BUCKETS)
RAG_LATENCY = Histogram("rag_duration_seconds", "RAG ingest and query latency by operation and outcome.",
                        ["operation", "outcome"], namespace=NAMESPACE, registry=REGISTRY, buckets=LATENCY_BUCKETS)
RAG_CHUNKS = Counter("rag_ingested_chunks", "Chunks indexed by RAG ingest.", namespace=NAMESPACE, registry=REGISTRY)
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LOOP_LAG = Histogram("event_loop_lag_seconds", "How late the event loop ran a timer: time it could serve no request.",
                     namespace=NAMESPACE, registry=REGISTRY, buckets=LOOP_LAG_BUCKETS)
LOOP_BLOCKED = Counter("event_loop_blocked", "Times the event loop was blocked longer than APP_LOOP_BLOCK_WARN_MS.",
                       namespace=NAMESPACE, registry=REGISTRY)
CLEANUP_REMOVED = Counter("cleanup_removed", "Items removed by the retention cleanup, by kind.", ["kind"],
                          namespace=NAMESPACE, registry=REGISTRY)
CLEANUP_BYTES = Counter("cleanup_freed_bytes", "Bytes freed by the retention cleanup.", namespace=NAMESPACE,
                        registry=REGISTRY)


def render() -> tuple[bytes, str]:
    """The registry in Prometheus text format and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def value(name: str, **labels: str) -> float:
    """Current value of one sample (0 when never recorded); `name` without the namespace, e.g. `llm_calls_total`."""
    found = REGISTRY.get_sample_value(f"{NAMESPACE}_{name}", labels)
    return float(found) if found is not None else 0.0


# --- http -----------------------------------------------------------------------------------
def record_request(*, method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


def record_rate_limited(*, limit: str) -> None:
    RATE_LIMITED.labels(limit).inc()


# --- llm ------------------------------------------------------------------------------------
def record_llm_call(
    *, provider: str, seconds: float, ok: bool = True, prompt: Sequence[Any] = (), reply: Any = None
) -> None:
    """One model call ended (after its retries); a successful one is also logged at DEBUG with prompt and reply."""
    LLM_CALLS.labels(provider, "ok" if ok else "error").inc()
    if ok:
        LLM_LATENCY.labels(provider).observe(seconds)
        if prompt or reply is not None:
            log_llm_exchange(provider=provider, prompt=prompt, reply=reply)


def record_llm_failover(*, provider: str, reason: str) -> None:
    """The chain gave up on `provider` for one call (it failed, or was skipped: open breaker, rate limit)."""
    LLM_FAILOVERS.labels(provider, reason).inc()
    if reason == "error":
        LLM_CALLS.labels(provider, "error").inc()


def record_llm_tokens(*, provider: str, message: Any) -> None:
    """Add the usage a message or chunk reports (`usage_metadata`); chunks carry deltas, so sums are right."""
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return
    for kind, key in (("prompt", "input_tokens"), ("completion", "output_tokens")):
        count = usage.get(key) or 0
        if count > 0:
            LLM_TOKENS.labels(provider, kind).inc(count)


# --- agent runs -----------------------------------------------------------------------------
def record_run(*, strategy: str, status: str, seconds: float) -> None:
    strategy = strategy or "unknown"
    RUNS.labels(strategy, status if status in RUN_STATUSES else "failed").inc()
    RUN_DURATION.labels(strategy).observe(seconds)


def instrument_agent_run(run: Callable[P, AsyncIterator[T]]) -> Callable[P, AsyncIterator[T]]:
    """Decorates `AgentService.run`: binds `run_id` for logging and records the turn's duration and status.

    The run id is bound in the consumer's context, which the API gives a task of its own per run.
    """

    @functools.wraps(run)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        run_id = kwargs.get("run_id")
        if isinstance(run_id, str):
            bind_run(run_id)
        started = time.monotonic()
        strategy, status, begun = str(kwargs.get("strategy") or "auto"), "failed", False
        RUNS_IN_FLIGHT.inc()
        try:
            async for event in run(*args, **kwargs):
                begun = True
                kind = getattr(event, "type", "")
                label = getattr(event, "strategy", None)
                if kind in ("run_started", "final_answer") and label:
                    strategy = str(label)
                if kind == "final_answer":
                    status = "done"
                elif kind == "error":
                    status = str(getattr(event, "kind", "failed"))
                yield event
        except BaseException as exc:
            if not isinstance(exc, Exception) and status != "done":  # GeneratorExit / CancelledError: stopped
                status = "cancelled"
            raise
        finally:
            RUNS_IN_FLIGHT.dec()
            if begun:
                record_run(strategy=strategy, status=status, seconds=time.monotonic() - started)

    return wrapper


# --- sandbox --------------------------------------------------------------------------------
def record_sandbox_run(*, result: Any, seconds: float) -> None:
    """Count one sandbox run from its `SandboxResult` (ok / error / blocked / unavailable / kill reason)."""
    killed = getattr(result, "killed_reason", None)
    if killed:
        outcome = str(killed)
    elif getattr(result, "ok", False):
        outcome = "ok"
    else:
        outcome = "unavailable" if getattr(result, "error_type", "") == "SandboxUnavailable" else "error"
    SANDBOX_RUNS.labels(outcome).inc()
    if killed in SANDBOX_KILLS:
        SANDBOX_KILLED.labels(str(killed)).inc()
    SANDBOX_DURATION.observe(seconds)
    level = logging.INFO if killed in SANDBOX_KILLS else logging.DEBUG
    sandbox_log.log(level, "sandbox run %s in %.0f ms", outcome, seconds * 1000, extra={"outcome": outcome})


def instrument_sandbox_run(run: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Decorates `SandboxManager.run`: every return path (blocked, unavailable, killed, ok) is counted."""

    @functools.wraps(run)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        started = time.monotonic()
        try:
            result = await run(*args, **kwargs)
        except Exception:
            SANDBOX_RUNS.labels("rejected").inc()
            raise
        record_sandbox_run(result=result, seconds=time.monotonic() - started)
        return result

    return wrapper


# --- rag ------------------------------------------------------------------------------------
def instrument_rag(operation: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorates RAG `ingest_document` / `search` (blocking functions): latency by outcome, chunks ingested."""

    def decorate(function: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            started = time.monotonic()
            try:
                result = function(*args, **kwargs)
            except Exception:
                RAG_LATENCY.labels(operation, "error").observe(time.monotonic() - started)
                raise
            RAG_LATENCY.labels(operation, "ok").observe(time.monotonic() - started)
            chunks = getattr(result, "chunks", None)
            if isinstance(chunks, int):
                RAG_CHUNKS.inc(chunks)
            return result

        return wrapper

    return decorate


# --- cleanup --------------------------------------------------------------------------------
def record_cleanup(*, kind: str, freed_bytes: int) -> None:
    CLEANUP_REMOVED.labels(kind).inc()
    if freed_bytes > 0:
        CLEANUP_BYTES.inc(freed_bytes)


# --- event loop -----------------------------------------------------------------------------
def record_loop_lag(*, seconds: float) -> None:
    LOOP_LAG.observe(seconds)


def record_loop_blocked() -> None:
    LOOP_BLOCKED.inc()
