"""The local runtime: the edge app on SQLite, a directory and the queue emulator.

`avatar-edge serve` runs it; `avatar dev` runs it next to an agent.
"""

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from litestar import Litestar

from contracts.logs import configure_logging
from contracts.settings import SettingsError
from edge_worker.adapters.local.blob_routes import blob_routes
from edge_worker.adapters.local.fs_blobs import FsBlobStore
from edge_worker.adapters.local.queue_routes import queue_routes
from edge_worker.adapters.local.slow_clients import body_read_timeout, header_deadline_protocol
from edge_worker.adapters.local.sqlite_executor import SqliteExecutor
from edge_worker.adapters.local.sqlite_queue import SqliteQueue
from edge_worker.adapters.sql_bucket_store import SqlBucketStore
from edge_worker.adapters.sql_job_store import SqlJobStore
from edge_worker.adapters.sql_key_store import SqlKeyStore
from edge_worker.app import create_app
from edge_worker.clock import SystemClock
from edge_worker.http.docs_ui import swagger_assets
from edge_worker.ports import Clock
from edge_worker.settings import EdgeSettings
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.maintenance import Maintenance
from edge_worker.usecases.wiring import UseCases

log = logging.getLogger("edge_worker.local")
DATABASE_FILE = "jobs.sqlite3"


@dataclass
class LocalRuntime:
    app: Litestar
    use_cases: UseCases
    database: SqliteExecutor
    store: SqlJobStore
    queue: SqliteQueue
    blobs: FsBlobStore

    def close(self) -> None:
        self.database.close()
        self.queue.close()


def maintenance_timer(
    maintenance: Maintenance, interval_seconds: float
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Lifespan running the maintenance sweep on a timer (the Worker uses its cron instead)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_seconds)
                try:
                    await maintenance.sweep()
                except Exception:
                    log.exception("maintenance sweep failed")

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return lifespan


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
    blobs = FsBlobStore(
        data_dir / "blobs", settings.public_url, settings.signing_secret, settings.max_result_bytes
    )
    use_cases = UseCases.build(
        EdgeContext(
            settings=settings,
            store=store,
            blobs=blobs,
            queue=queue,
            clock=clock or SystemClock(),
            keys=SqlKeyStore(database),
            buckets=SqlBucketStore(database),
        )
    )
    extra = [
        blob_routes(blobs),
        queue_routes(queue, settings.cf_account_id, settings.cf_queue_id, settings.cf_api_token),
    ]
    timer = maintenance_timer(use_cases.maintenance, settings.maintenance_interval_seconds)
    app = create_app(use_cases, extra, lifespan=[timer], docs_assets=swagger_assets())
    return LocalRuntime(app, use_cases, database, store, queue, blobs)


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
