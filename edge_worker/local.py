"""The local runtime: the edge app on SQLite, a directory and the queue emulator.

`avatar-edge serve` runs it; `avatar dev` runs it next to an agent.
"""

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar

from contracts.logs import configure_logging
from contracts.settings import SettingsError
from edge_worker.adapters.local.blob_routes import blob_routes
from edge_worker.adapters.local.fs_blobs import FsBlobStore
from edge_worker.adapters.local.httpx_pod_provider import HttpxPodProvider
from edge_worker.adapters.local.httpx_webhook_sender import HttpxWebhookSender
from edge_worker.adapters.local.queue_routes import queue_routes
from edge_worker.adapters.local.s3_blobs import S3BlobStore, s3_client
from edge_worker.adapters.local.slow_clients import body_read_timeout, header_deadline_protocol
from edge_worker.adapters.local.sqlite_executor import SqliteExecutor
from edge_worker.adapters.local.sqlite_queue import SqliteQueue
from edge_worker.adapters.local.sqlite_webhook_queue import Leased, SqliteWebhookQueue
from edge_worker.adapters.sql_bucket_store import SqlBucketStore
from edge_worker.adapters.sql_job_store import SqlJobStore
from edge_worker.adapters.sql_key_store import SqlKeyStore
from edge_worker.adapters.sql_pool_store import SqlPoolStore
from edge_worker.adapters.sql_webhook_store import SqlWebhookStore
from edge_worker.app import create_app
from edge_worker.clock import SystemClock
from edge_worker.http.docs_ui import swagger_assets
from edge_worker.ports import BlobStore, Clock
from edge_worker.settings import EdgeSettings
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.maintenance import Maintenance
from edge_worker.usecases.webhook_delivery import WebhookDelivery
from edge_worker.usecases.wiring import UseCases

log = logging.getLogger("edge_worker.local")
DATABASE_FILE = "jobs.sqlite3"
WEBHOOK_BATCH = 10


@dataclass
class LocalRuntime:
    app: Litestar
    use_cases: UseCases
    database: SqliteExecutor
    store: SqlJobStore
    queue: SqliteQueue
    blobs: BlobStore
    webhook_queue: SqliteWebhookQueue

    def close(self) -> None:
        self.database.close()
        self.queue.close()
        self.webhook_queue.close()


Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def background(loop: Callable[[], Coroutine[Any, Any, None]]) -> Lifespan:
    """Lifespan running `loop` as a task for as long as the app serves."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return lifespan


def maintenance_timer(maintenance: Maintenance, interval_seconds: float) -> Lifespan:
    """Lifespan running the maintenance sweep on a timer (the Worker uses its cron instead)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await maintenance.sweep()
            except Exception:
                log.exception("maintenance sweep failed")

    return background(loop)


def webhook_consumer(
    delivery: WebhookDelivery, queue: SqliteWebhookQueue, poll_seconds: float
) -> Lifespan:
    """Lifespan delivering webhooks off the local queue, as the Worker's queue consumer does
    off its Cloudflare Queue: a batch at a time, each message acked or retried with a delay."""

    async def deliver(item: Leased) -> None:
        try:
            delay = await delivery.deliver(item.message)
        except Exception:
            log.exception("webhook delivery failed", extra={"webhook_id": item.message.webhook_id})
            delay = delivery.error_delay
        if delay is None:
            queue.ack(item.lease_id)
        else:
            queue.retry(item.lease_id, delay)

    async def loop() -> None:
        while True:
            leased = queue.lease(WEBHOOK_BATCH)
            if leased:
                await asyncio.gather(*(deliver(item) for item in leased))
                continue
            due = queue.next_due_in()
            await queue.wait_for_send(poll_seconds if due is None else min(due, poll_seconds))

    return background(loop)


def build_local(settings: EdgeSettings, data_dir: Path, clock: Clock | None = None) -> LocalRuntime:
    data_dir.mkdir(parents=True, exist_ok=True)
    database = SqliteExecutor(data_dir / DATABASE_FILE)
    store = SqlJobStore(database)
    assert settings.cf_api_token is not None, "local_settings checks it"
    queue = SqliteQueue(
        data_dir / "queue.sqlite3",
        max_retries=settings.queue_max_retries,
        default_visibility_ms=int(settings.queue_visibility_timeout_seconds * 1000),
    )
    clock = clock or SystemClock()
    blobs = local_blobs(settings, data_dir, clock)
    webhook_queue = SqliteWebhookQueue(
        data_dir / "webhooks.sqlite3", visibility_seconds=settings.webhook_timeout_seconds + 60
    )
    use_cases = UseCases.build(
        EdgeContext(
            settings=settings,
            store=store,
            blobs=blobs,
            queue=queue,
            clock=clock,
            keys=SqlKeyStore(database),
            buckets=SqlBucketStore(database),
            webhooks=SqlWebhookStore(database),
            webhook_queue=webhook_queue,
            webhook_sender=HttpxWebhookSender(settings.webhook_allow_private),
            pool=SqlPoolStore(database),
            pods=HttpxPodProvider(settings.runpod_api_base, key)
            if (key := settings.pool_api_key)
            else None,
        )
    )
    extra = [
        *([blob_routes(blobs)] if isinstance(blobs, FsBlobStore) else []),
        queue_routes(queue, settings.cf_account_id, settings.cf_queue_id, settings.cf_api_token),
    ]
    timer = maintenance_timer(use_cases.maintenance, settings.maintenance_interval_seconds)
    consumer = webhook_consumer(
        use_cases.webhook_delivery, webhook_queue, settings.webhook_poll_seconds
    )
    app = create_app(use_cases, extra, lifespan=[timer, consumer], docs_assets=swagger_assets())
    return LocalRuntime(app, use_cases, database, store, queue, blobs, webhook_queue)


def local_blobs(settings: EdgeSettings, data_dir: Path, clock: Clock) -> BlobStore:
    """A directory served by the edge's own signed URLs, or an S3-compatible bucket whose
    presigned URLs clients and agents use directly (`BLOB_STORE`)."""
    if settings.blob_store == "s3":
        assert settings.s3_bucket and settings.s3_access_key_id and settings.s3_secret_access_key
        client = s3_client(
            settings.s3_endpoint_url,
            settings.s3_region,
            settings.s3_access_key_id,
            settings.s3_secret_access_key,
        )
        return S3BlobStore(client, settings.s3_bucket, clock)
    return FsBlobStore(
        data_dir / "blobs", settings.public_url, settings.signing_secret, settings.max_result_bytes
    )


def local_settings(env: Mapping[str, str], host: str, port: int) -> EdgeSettings:
    public_url = env.get("PUBLIC_URL") or f"http://{host}:{port}"
    settings = EdgeSettings.from_env(env, public_url=public_url)
    if settings.cf_api_token is None:
        raise SettingsError(
            "edge",
            {
                "CF_API_TOKEN": "required by the local queue emulator "
                "(the token agents use to pull jobs)"
            },
        )
    return settings


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="avatar-edge", description="Run the edge locally.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the edge with the local queue and blob store")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument("--data-dir", type=Path, default=Path(".avatar"))
    args = parser.parse_args(argv)

    env = os.environ if env is None else env
    try:
        settings = local_settings(env, args.host, args.port)
    except SettingsError as exc:
        print(f"avatar-edge: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, secrets=settings.secrets())
    runtime = build_local(settings, args.data_dir)
    try:
        uvicorn.Server(server_config(runtime.app, settings, args.host, args.port)).run()
    finally:
        runtime.close()
    return 0


def server_config(app: Litestar, settings: EdgeSettings, host: str, port: int) -> uvicorn.Config:
    """uvicorn with limits on slow, silent and too many clients (docs/SECURITY.md)."""
    return uvicorn.Config(
        body_read_timeout(app, settings.http_body_timeout_seconds),
        host=host,
        port=port,
        http=header_deadline_protocol(settings.http_header_timeout_seconds),
        timeout_keep_alive=settings.http_keep_alive_seconds,
        limit_concurrency=settings.http_max_connections,
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    raise SystemExit(main())
