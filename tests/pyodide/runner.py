"""Start the Worker under Pyodide (host/worker_host.mjs) and talk to it.

The host runs the deployable bundle (build/worker/ and python_modules/) on Pyodide 314.0.4
in Node, with wrangler's platform proxy for D1 (the repository's migrations applied first),
R2 and the Queue producer, all declared by the repository's wrangler.toml. A host that does
not come up raises with its log: a suite that claims to run the Worker must not skip it.
"""

import asyncio
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from tests.cf_bridge.bridge import ROOT, run_wrangler, wrangler_env
from tests.cf_bridge.proxies import R2Bucket
from tests.edge_worker.cloudflare.fake_r2 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, QueryAuthGate
from tests.edge_worker.conftest import AGENT_TOKEN, API_KEY, ENV, OTHER_KEY, PEPPER

HOST = Path(__file__).resolve().parent / "host" / "worker_host.mjs"
BRIDGE_WORKER = ROOT / "tests" / "cf_bridge" / "worker.js"
WRANGLER_CONFIG = ROOT / "wrangler.toml"
START_TIMEOUT_S = 240.0
R2_ACCOUNT_ID = "acc0123"
# The Worker's secrets (wrangler.toml lists them; the vars come from wrangler.toml itself),
# the same keys as the local runtime's tests, and no retry backoff, as there.
SECRETS = {
    "API_KEYS": f"{API_KEY},{OTHER_KEY}",
    "AGENT_TOKEN": AGENT_TOKEN,
    "API_KEY_PEPPER": PEPPER,
    "SIGNING_SECRET": ENV["SIGNING_SECRET"],
    "R2_ACCOUNT_ID": R2_ACCOUNT_ID,
    "R2_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "R2_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "RETRY_BACKOFF_SECONDS": "0",
    # The webhook tests' receiver listens on 127.0.0.1.
    "WEBHOOK_ALLOW_PRIVATE": "1",
}
# Flags that a compatibility date turns on and that the runtime SDK reads, with the first
# date of each (workerd's src/workerd/io/compatibility-date.capnp).
DATED_FLAGS = {
    "python_request_headers_preserve_commas": "2026-02-17",
    "python_workflows_implicit_dependencies": "2026-02-25",
    "enable_python_external_sdk": "2026-04-21",
    "python_process_pth_files": "2026-05-26",
}


# The Pyodide release that a Python Workers runtime flag selects (the same file).
PYODIDE_OF_FLAG = {"python_workers_20260610": "314.0.4"}


class HostStartError(RuntimeError):
    pass


def compatibility_flags(config: Path = WRANGLER_CONFIG) -> dict[str, bool]:
    """The flags workerd would hand the SDK for this config: listed ones and dated ones."""
    parsed = tomllib.loads(config.read_text())
    date = parsed["compatibility_date"]
    dated = {flag for flag, since in DATED_FLAGS.items() if date >= since}
    return {flag: True for flag in sorted({*parsed["compatibility_flags"], *dated})}


def deployed_pyodide(config: Path = WRANGLER_CONFIG) -> str:
    """The Pyodide that the config's runtime flag deploys the Worker to (the host runs it)."""
    flags = tomllib.loads(config.read_text())["compatibility_flags"]
    (version,) = [PYODIDE_OF_FLAG[flag] for flag in flags if flag in PYODIDE_OF_FLAG]
    return version


@dataclass(frozen=True)
class RunningWorker:
    url: str
    control: str
    ready: dict[str, Any]
    process: subprocess.Popen[bytes]
    state_dir: Path

    def stop(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _get(self, route: str) -> Any:
        return httpx.get(f"{self.control}/__host/{route}", timeout=30).json()["result"]

    def requests(self) -> list[dict[str, Any]]:
        """Every event served so far: seconds, and the modules it imported first."""
        return self._get("requests")

    def loaded_files(self) -> list[str]:
        return self._get("loaded")

    def queued(self) -> list[dict[str, Any]]:
        """What the Worker sent to its queue binding: body and options, oldest first."""
        return self._get("queue")

    def consume(self, queue: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Hand the queue consumer a batch, as workerd does: `Default.queue(batch, env, ctx)`;
        each message's `ack()` or `retry(options)` call, in order."""
        response = httpx.post(
            f"{self.control}/__host/queue",
            json={"queue": queue, "messages": messages},
            timeout=120,
        )
        response.raise_for_status()
        outcomes: list[dict[str, Any]] = response.json()["result"]
        return outcomes

    def scheduled(self, env: dict[str, str] | None = None) -> None:
        """Fire the cron trigger, as workerd does: `Default.scheduled(controller, env, ctx)`;
        `env` adds vars to this event's env (the Worker builds a runtime for them)."""
        body = {"env": env} if env else None
        response = httpx.post(f"{self.control}/__host/scheduled", json=body, timeout=120)
        response.raise_for_status()


def _read_ready(process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        readable, _, _ = select.select([process.stdout], [], [], 1.0)
        if readable:
            line = process.stdout.readline()
            if line:
                return json.loads(line)
    raise HostStartError(f"the Pyodide host did not start:\n{log.read_text()[-20000:]}")


def start_worker(
    worker_dir: Path, python_modules: Path, main_module: str = "worker_entry"
) -> RunningWorker:
    """Apply the migrations to a scratch D1, then start the host on it."""
    state_dir = Path(tempfile.mkdtemp(prefix="pyodide-worker-"))
    persist = state_dir / "state"
    run_wrangler("d1", "migrations", "apply", "DB", "--local", "--persist-to", str(persist))
    config = {
        "wranglerConfig": str(WRANGLER_CONFIG),
        "persistDir": str(persist / "v3"),
        "bridgeWorker": str(BRIDGE_WORKER),
        "workerDir": str(worker_dir),
        "pythonModules": str(python_modules),
        "mainModule": main_module,
        "compatFlags": compatibility_flags(),
        "pyodideVersion": deployed_pyodide(),
        "cron": tomllib.loads(WRANGLER_CONFIG.read_text())["triggers"]["crons"][0],
        "secrets": SECRETS,
    }
    log = state_dir / "host.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [
                "node",
                "--disable-warning=MODULE_TYPELESS_PACKAGE_JSON",
                str(HOST),
                json.dumps(config),
            ],
            cwd=ROOT,
            env=wrangler_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    running = RunningWorker("", "", {}, process, state_dir)
    try:
        ready = _read_ready(process, log)
    except BaseException:
        running.stop()
        raise
    return RunningWorker(ready["worker"], ready["control"], ready, process, state_dir)


class R2Gateway(httpx.BaseTransport):
    """The client's transport: presigned R2 URLs (https://<account>.r2.cloudflarestorage.com/
    <bucket>/<key>) are checked as R2 checks them, by botocore's SigV4 signer (fake_r2's
    QueryAuthGate), then served from the Worker's own local bucket with R2's `If-None-Match:
    *` and `ETag`; every other request goes to the Worker over HTTP."""

    def __init__(self, control: str, bucket_name: str) -> None:
        self._inner = httpx.HTTPTransport()
        self._bucket = R2Bucket(control)
        self._bucket_name = bucket_name
        self._gate = QueryAuthGate(app=None, secrets={ACCESS_KEY_ID: SECRET_ACCESS_KEY})  # type: ignore[arg-type]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != f"{R2_ACCOUNT_ID}.r2.cloudflarestorage.com":
            return self._inner.handle_request(request)
        environ = {
            "REQUEST_METHOD": request.method,
            "RAW_URI": request.url.raw_path.decode(),
            **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in request.headers.items()},
        }
        refusal = self._gate.refusal(environ, request.url.query.decode())
        if refusal is not None:
            return httpx.Response(403, text=" ".join(refusal))
        bucket, _, key = unquote(request.url.path).lstrip("/").partition("/")
        if bucket != self._bucket_name:
            return httpx.Response(404, text=f"no bucket {bucket}")
        if request.method == "PUT":
            exists = asyncio.run(self._bucket.head(key)) is not None
            if exists and request.headers.get("if-none-match") == "*":
                return httpx.Response(412, text="PreconditionFailed")
            options = {"httpMetadata": {"contentType": request.headers["content-type"]}}
            asyncio.run(self._bucket.put(key, request.read(), **options))
            return httpx.Response(200)
        if request.method != "GET":
            return httpx.Response(405)
        found = asyncio.run(self._bucket.get(key))
        if found is None:
            return httpx.Response(404, text=f"no object {key}")
        content_type = found.httpMetadata.get("contentType", "application/octet-stream")
        headers = {"content-type": content_type, "etag": f'"{found.etag}"'}
        return httpx.Response(200, content=found.data, headers=headers)

    def close(self) -> None:
        self._inner.close()
