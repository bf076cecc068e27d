"""`avatar-admin`: manage API keys and read usage across them, on the local database
directly or on a deployed edge through its admin API; both paths end in the same use cases
(`ApiKeys`, `Usage`). `pool` reads an edge's `GET /pool`: only the edge knows its pool
settings, so it needs `--url`."""

import argparse
import asyncio
import csv
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, TextIO, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from avatar_client.config import DEV_DATA_DIR, DEV_SECRETS_FILE
from avatar_client.dev import DevError, read_secrets
from avatar_client.progress import duration
from avatar_client.tables import table, timestamp
from contracts import (
    AdminUsageReport,
    ErrorEnvelope,
    KeyCreated,
    KeyCreateRequest,
    KeyList,
    KeyView,
)
from contracts.pool import PoolView
from edge_worker.adapters.local.sqlite_executor import SqliteExecutor
from edge_worker.adapters.sql_job_store import SqlJobStore
from edge_worker.adapters.sql_key_store import SqlKeyStore
from edge_worker.clock import SystemClock
from edge_worker.domain.problems import Problem
from edge_worker.local import DATABASE_FILE
from edge_worker.usecases.api_keys import ApiKeys
from edge_worker.usecases.usage import Usage

ADMIN_TIMEOUT_SECONDS = 30.0
Reply = TypeVar("Reply", bound=BaseModel)


class AdminFailed(Exception):
    """What the command could not do, in one line for the operator."""


class KeyAdmin(Protocol):
    async def create(self, request: KeyCreateRequest) -> KeyCreated: ...

    async def list(self) -> KeyList: ...

    async def revoke(self, key_id: str) -> KeyView: ...

    async def rotate(self, key_id: str) -> KeyCreated: ...


class UsageAdmin(Protocol):
    async def across_keys(
        self, first: str | None, last: str | None, key_id: str | None = None
    ) -> AdminUsageReport: ...


class AdminApi:
    """The admin API of an edge (`--url`), answering with the same models as `ApiKeys` and
    `Usage`."""

    def __init__(
        self, url: str, token: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._transport = transport

    async def create(self, request: KeyCreateRequest) -> KeyCreated:
        body = request.model_dump(exclude_none=True)
        return await self._call("POST", "/admin/keys", KeyCreated, body)

    async def list(self) -> KeyList:
        return await self._call("GET", "/admin/keys", KeyList)

    async def revoke(self, key_id: str) -> KeyView:
        return await self._call("DELETE", f"/admin/keys/{key_id}", KeyView)

    async def rotate(self, key_id: str) -> KeyCreated:
        return await self._call("POST", f"/admin/keys/{key_id}/rotate", KeyCreated)

    async def across_keys(
        self, first: str | None, last: str | None, key_id: str | None = None
    ) -> AdminUsageReport:
        wanted = {"from": first, "to": last, "key": key_id}
        params = {name: value for name, value in wanted.items() if value is not None}
        return await self._call("GET", "/admin/usage", AdminUsageReport, params=params)

    async def pool(self) -> PoolView:
        return await self._call("GET", "/pool", PoolView)

    async def _call(
        self,
        method: str,
        path: str,
        model: type[Reply],
        body: object = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        async with httpx.AsyncClient(
            headers=self._headers, timeout=ADMIN_TIMEOUT_SECONDS, transport=self._transport
        ) as client:
            try:
                response = await client.request(method, self._url + path, json=body, params=params)
            except httpx.HTTPError as exc:
                raise AdminFailed(f"cannot reach {self._url}: {exc}") from exc
        if response.is_success:
            return model.model_validate_json(response.content)
        try:
            error = ErrorEnvelope.model_validate_json(response.content).error
        except ValidationError:
            raise AdminFailed(f"HTTP {response.status_code} from {self._url}") from None
        raise AdminFailed(f"{error.code}: {error.message}")


def _from_env_or_dev_secrets(name: str, env: Mapping[str, str], data_dir: Path) -> str:
    """`name` from the environment, else from the secrets `avatar dev` keeps in `data_dir`."""
    if env.get(name):
        return env[name]
    path = data_dir / DEV_SECRETS_FILE
    try:
        value = read_secrets(path).get(name)
    except DevError as exc:
        raise AdminFailed(str(exc)) from exc
    if not value:
        raise AdminFailed(f"{name} is not set (environment, or {path} from `avatar dev`)")
    return value


def print_key(key: KeyView, out: TextIO) -> None:
    expires = key.expires_at.isoformat() if key.expires_at else "never"
    state = "revoked" if key.revoked_at else "active"
    used = key.last_used_at.isoformat() if key.last_used_at else "never"
    print(
        f"{key.id}  {key.prefix}…  {key.name!r}  {state}  expires {expires}  last used {used}",
        file=out,
    )


def print_created(created: KeyCreated, out: TextIO) -> None:
    print_key(created, out)
    print("The key (shown only now; it is stored hashed):", file=out)
    print(f"    {created.key}", file=out)


USAGE_COLUMNS = (
    "day",
    "key_id",
    "key_name",
    "owner",
    "quality",
    "jobs_created",
    "jobs_completed",
    "jobs_failed",
    "audio_seconds",
    "video_seconds",
    "gpu_seconds",
)


def print_usage(report: AdminUsageReport, output_format: str, out: TextIO) -> None:
    """CSV: a header, then one row per key (owner), day and quality; JSON: the report."""
    if output_format == "json":
        print(report.model_dump_json(indent=2), file=out)
        return
    writer = csv.DictWriter(out, fieldnames=USAGE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for bucket in report.buckets:
        writer.writerow(bucket.model_dump(mode="json", include=set(USAGE_COLUMNS)))


async def run_usage(admin: UsageAdmin, args: argparse.Namespace, out: TextIO) -> None:
    print_usage(await admin.across_keys(args.first, args.last, args.key), args.format, out)


POOL_COLUMNS = (
    "POD",
    "STATE",
    "UPTIME",
    "JOBS",
    "GPU-S",
    "GPU-S/VIDEO-S",
    "LAST HEARTBEAT",
    "STOPPED",
)


def print_pool(view: PoolView, as_json: bool, out: TextIO) -> None:
    """Text: the policy, cost and counters, the last decision, then one row per pod."""
    if as_json:
        print(view.model_dump_json(indent=2), file=out)
        return
    up = sum(1 for pod in view.pods if pod.state != "stopped")
    hourly = view.estimated_cost_per_hour_usd
    cost = "cost unknown (POOL_POD_HOURLY_USD)" if hourly is None else f"${hourly:.2f} an hour"
    most = "no maximum" if view.max_pods is None else f"at most {view.max_pods}"
    errors = view.api_errors
    lines = [
        f"pool {'on' if view.enabled else 'off'}: {view.min_pods} pods at least, {most}; "
        f"{up} up, {cost}; {view.gpu_seconds_per_video_second:g} GPU-s per video-s",
        f"last decision: {view.last_decision or 'none yet'}"
        + (f" ({timestamp(view.last_decision_at)})" if view.last_decision_at else ""),
        f"pods started {view.pods_started}, stopped {view.pods_stopped} "
        f"({view.unresponsive_stopped} without a heartbeat); RunPod errors: "
        f"{errors.rate_limited} rate limited, {errors.server_errors} server, "
        f"{errors.unreachable} unreachable, {errors.refused} refused",
    ]
    rows = [
        (
            pod.pod_id,
            pod.state,
            duration(math.floor(pod.uptime_seconds)),  # whole seconds up, not rounded up
            str(pod.jobs_done),
            f"{pod.gpu_seconds:.1f}",
            ""
            if pod.gpu_seconds_per_video_second is None
            else f"{pod.gpu_seconds_per_video_second:.2f}",
            timestamp(pod.last_heartbeat_at),
            f"{timestamp(pod.stopped_at)} {pod.stop_reason or ''}".strip(),
        )
        for pod in view.pods
    ]
    lines += ["", *table(POOL_COLUMNS, rows)] if rows else ["no pods"]
    print("\n".join(lines), file=out)


async def run_pool(admin: AdminApi, args: argparse.Namespace, out: TextIO) -> None:
    print_pool(await admin.pool(), args.json, out)


async def run_command(admin: KeyAdmin, args: argparse.Namespace, out: TextIO) -> None:
    if args.action == "create":
        request = KeyCreateRequest(
            name=args.name,
            expires_in_days=args.expires_days,
            rate_limit_per_minute=args.rate_limit_per_minute,
            max_active_jobs=args.max_active_jobs,
            daily_video_seconds=args.daily_video_seconds,
        )
        print_created(await admin.create(request), out)
    elif args.action == "list":
        listed = await admin.list()
        if args.json:
            print(listed.model_dump_json(indent=2), file=out)
        else:
            for key in listed.keys:
                print_key(key, out)
    elif args.action == "revoke":
        print_key(await admin.revoke(args.key_id), out)
    else:
        print_created(await admin.rotate(args.key_id), out)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="avatar-admin", description="Manage API keys; read usage across them."
    )
    top.add_argument(
        "--data-dir",
        type=Path,
        default=DEV_DATA_DIR,
        help="the local edge's data directory (default: %(default)s); needs API_KEY_PEPPER",
    )
    top.add_argument("--url", help="a deployed edge: use its admin API instead")
    top.add_argument("--admin-token", help="with --url (default: ADMIN_TOKEN)")
    groups = top.add_subparsers(dest="group", required=True)
    keys = groups.add_parser("keys", help="create, list, revoke and rotate API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key; printed once")
    create.add_argument("--name", required=True)
    create.add_argument("--expires-days", type=int)
    create.add_argument("--rate-limit-per-minute", type=int)
    create.add_argument("--max-active-jobs", type=int)
    create.add_argument("--daily-video-seconds", type=float)
    listing = actions.add_parser("list", help="every key, without its secret")
    listing.add_argument("--json", action="store_true")
    for name, what in (("revoke", "refused from its next request on"), ("rotate", "a new secret")):
        actions.add_parser(name, help=what).add_argument("key_id")
    usage = groups.add_parser("usage", help="daily usage per key (owner) and quality")
    usage.add_argument("--from", dest="first", help="first UTC day, YYYY-MM-DD")
    usage.add_argument("--to", dest="last", help="last UTC day, included (default: today)")
    usage.add_argument("--format", choices=("csv", "json"), default="csv")
    usage.add_argument("--key", help="only this key's usage (its id)")
    pool = groups.add_parser(
        "pool",
        help="the RunPod pool of the edge at --url: pods, last decision, cost per hour, errors",
    )
    pool.add_argument("--json", action="store_true")
    return top


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO = sys.stdout,
) -> int:
    top = parser()
    args = top.parse_args(argv)
    if args.group == "pool" and not args.url:
        top.error(
            "pool reads GET /pool from the edge: pass --url (avatar dev: http://127.0.0.1:8787)"
        )
    env = os.environ if env is None else env
    try:
        if args.url:
            token = args.admin_token or _from_env_or_dev_secrets("ADMIN_TOKEN", env, args.data_dir)
            api = AdminApi(args.url, token)
            if args.group == "pool":
                asyncio.run(run_pool(api, args, out))
            elif args.group == "usage":
                asyncio.run(run_usage(api, args, out))
            else:
                asyncio.run(run_command(api, args, out))
            return 0
        # Keys are hashed with the pepper; usage reads no secret.
        pepper = (
            _from_env_or_dev_secrets("API_KEY_PEPPER", env, args.data_dir)
            if args.group == "keys"
            else None
        )
        if not args.data_dir.is_dir():
            raise AdminFailed(f"no local edge data in {args.data_dir} (see --data-dir, --url)")
        database = SqliteExecutor(args.data_dir / DATABASE_FILE)
        try:
            keys = SqlKeyStore(database)
            if pepper is None:
                usage = Usage(SqlJobStore(database), keys, SystemClock())
                asyncio.run(run_usage(usage, args, out))
            else:
                asyncio.run(run_command(ApiKeys(keys, pepper, SystemClock()), args, out))
        finally:
            database.close()
    except (AdminFailed, ValidationError) as exc:
        print(f"avatar-admin: {exc}", file=sys.stderr)
        return 1
    except Problem as exc:
        print(f"avatar-admin: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
