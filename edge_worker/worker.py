"""The Cloudflare Worker: the same Litestar app as the local runtime, on D1, R2 and Queues.

`fetch` serves HTTP through the runtime's ASGI bridge; `scheduled` (the cron trigger in
wrangler.toml) runs the maintenance sweep; `queue` (the consumer of the webhook queue in
wrangler.toml) delivers webhooks. The Worker's main module, `worker_entry.py`, is
written by scripts/stage_worker.py and only re-exports `Default` from here.

workerd snapshots the isolate's memory after the top level has run and starts new isolates
from it, so whatever the first request would import or build is done here instead: the app
itself (Litestar imports its plugins and middleware as it builds one), the ASGI bridge, and
anyio's asyncio backend (loaded on first use). Only the bindings wait for the first event.
"""

import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

import anyio._backends._asyncio  # noqa: F401  (see the module docstring)

from contracts import ErrorBody, ErrorEnvelope
from contracts.logs import configure_logging
from contracts.webhooks import WebhookMessage
from edge_worker.adapters.cloudflare.d1_executor import D1Executor
from edge_worker.adapters.cloudflare.fetch_pod_provider import FetchPodProvider
from edge_worker.adapters.cloudflare.fetch_webhook_sender import FetchWebhookSender
from edge_worker.adapters.cloudflare.js_values import to_py
from edge_worker.adapters.cloudflare.presign import ENV_NAMES as R2_ENV_NAMES
from edge_worker.adapters.cloudflare.presign import R2Presigner, R2Settings
from edge_worker.adapters.cloudflare.queue_producer import QueueProducer
from edge_worker.adapters.cloudflare.r2_blobs import R2BlobStore
from edge_worker.adapters.sql_bucket_store import SqlBucketStore
from edge_worker.adapters.sql_job_store import SqlJobStore
from edge_worker.adapters.sql_key_store import SqlKeyStore
from edge_worker.adapters.sql_pool_store import SqlPoolStore
from edge_worker.adapters.sql_webhook_store import SqlWebhookStore
from edge_worker.app import attach_use_cases, create_app
from edge_worker.clock import SystemClock
from edge_worker.domain.problems import Problem, invalid_input
from edge_worker.http.generate_input import form_rules
from edge_worker.settings import EdgeSettings, MiB
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.wiring import UseCases

try:
    import workers.asgi  # noqa: F401  (see the module docstring)
    from workers import WorkerEntrypoint
except ImportError:  # CPython: `workers` is the vendored workers-runtime-sdk, Pyodide only

    class WorkerEntrypoint:  # type: ignore[no-redef]
        """What tests get instead: the runtime's base class also just keeps ctx and env."""

        def __init__(self, ctx: Any, env: Any) -> None:
            self.ctx = ctx
            self.env = env


log = logging.getLogger("edge_worker.webhooks")

# The bridge buffers a whole request body before the app sees it, in an isolate of 128 MB:
# multipart bodies stay well below that, and larger files go through POST /uploads.
# A watched job (event stream, Prefer: wait) costs one D1 read per poll: every 1.5 s here.
WORKER_DEFAULTS = {
    "MAX_INLINE_REQUEST_BYTES": str(24 * MiB),
    "JOB_WATCH_POLL_SECONDS": "1.5",
}
ENV_NAMES = ("API_KEY", *(name.upper() for name in EdgeSettings.model_fields), *R2_ENV_NAMES)


def env_values(env: Any) -> dict[str, str]:
    """The vars and secrets the edge reads, as the mapping `EdgeSettings.from_env` takes.

    Bindings expose them as attributes; a var written as a number in wrangler.toml arrives
    as a number, and a name that is not set is simply absent.
    """
    values: dict[str, str] = {}
    for name in ENV_NAMES:
        value = getattr(env, name, None)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            values[name] = str(value)
    return values


APP = create_app(None)


@dataclass(frozen=True)
class WorkerRuntime:
    values: dict[str, str]
    settings: EdgeSettings
    use_cases: UseCases


def build_runtime(env: Any, values: dict[str, str]) -> WorkerRuntime:
    """Validate settings, wire the Cloudflare adapters around `env`'s bindings and attach
    them to the app."""
    settings = EdgeSettings.from_env({**WORKER_DEFAULTS, **values})
    r2 = R2Settings.from_env(values)
    configure_logging(
        settings.log_level,
        secrets=[*settings.secrets(), r2.secret_access_key],
    )
    clock = SystemClock()
    database = D1Executor(env.DB)
    use_cases = UseCases.build(
        EdgeContext(
            settings=settings,
            store=SqlJobStore(database),
            blobs=R2BlobStore(env.BUCKET, R2Presigner(r2, clock)),
            queue=QueueProducer(env.JOBS),
            clock=clock,
            keys=SqlKeyStore(database),
            buckets=SqlBucketStore(database),
            webhooks=SqlWebhookStore(database),
            webhook_queue=QueueProducer(env.WEBHOOKS),
            webhook_sender=FetchWebhookSender(),
            pool=SqlPoolStore(database),
            pods=FetchPodProvider(settings.runpod_api_base, key)
            if (key := settings.pool_api_key)
            else None,
        )
    )
    attach_use_cases(APP, use_cases)
    return WorkerRuntime(values, settings, use_cases)


_runtime: WorkerRuntime | None = None


def runtime_for(env: Any) -> WorkerRuntime:
    """The isolate's runtime: built on its first event, then reused by every later one.

    This slot, with the use cases it attaches to `APP`, is the module's only mutable state.
    It is keyed by the env's vars and secrets, not by the env object: the runtime hands each
    entrypoint instance a fresh env wrapper, so object identity would rebuild on every
    request. Bindings, vars and secrets change only with a new deployment, which starts new
    isolates, so in production the runtime is built once per isolate; an env with other vars
    or secrets (tests) gets its own.
    """
    global _runtime
    values = env_values(env)
    if _runtime is None or _runtime.values != values:
        _runtime = build_runtime(env, values)
    return _runtime


def body_refusal(
    content_length: str | None, has_body: bool, runtime: WorkerRuntime
) -> Problem | None:
    """Why a request must be refused before the bridge buffers its body, if it must.

    The bridge reads the whole body into memory first, so the app's streaming limits come
    too late here: a body must announce its length, and no more than the largest one any
    route accepts (the inline multipart cap).
    """
    if content_length is None:
        if not has_body:
            return None
        return invalid_input(
            "a request with a body needs a Content-Length header", "Content-Length"
        )
    if not (content_length.isascii() and content_length.isdigit()):
        return invalid_input("malformed Content-Length", "Content-Length")
    if int(content_length) > runtime.settings.max_request_bytes:
        return form_rules(runtime.settings).too_large()
    return None


def error_reply(error: Problem) -> Any:
    """The API's error envelope as a Worker response (the app never saw this request)."""
    from workers import Response

    envelope = ErrorEnvelope(
        error=ErrorBody(code=error.code, message=error.message, details=error.details)
    )
    return Response(
        envelope.model_dump_json(),
        status=error.code.http_status,
        headers={"content-type": "application/json", "x-request-id": uuid.uuid4().hex},
    )


class Default(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Any:
        runtime = runtime_for(self.env)
        refusal = body_refusal(request.headers.get("content-length"), bool(request.body), runtime)
        if refusal is not None:
            return error_reply(refusal)
        from workers import asgi

        return await asgi.fetch(APP, request, self.env)

    async def scheduled(self, controller: Any, env: Any, ctx: Any) -> None:
        """The cron trigger: one maintenance sweep (lost agents, expiry, stranded jobs, and
        the RunPod pool when it is configured)."""
        await runtime_for(self.env).use_cases.maintenance.sweep()

    async def queue(self, batch: Any, env: Any, ctx: Any) -> None:
        """The webhook queue's consumer: one delivery attempt per message, then `ack()`, or
        `retry(delaySeconds=...)` for the next attempt (wrangler.toml's `max_retries` is
        above any schedule the settings allow; the edge gives up by its own count)."""
        delivery = runtime_for(self.env).use_cases.webhook_delivery
        for message in batch.messages:
            delay: float | None
            try:
                body = WebhookMessage.model_validate(to_py(message.body))
            except ValueError:
                log.exception("malformed webhook message dropped")
                message.ack()
                continue
            try:
                delay = await delivery.deliver(body)
            except Exception:
                log.exception("webhook delivery failed", extra={"webhook_id": body.webhook_id})
                delay = delivery.error_delay
            if delay is None:
                message.ack()
            else:
                message.retry(delaySeconds=math.ceil(delay))
