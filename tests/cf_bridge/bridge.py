"""Starts the bridge Worker (worker.js) once per test session on real local bindings.

`wrangler d1 migrations apply --local` loads the repository's migrations into a scratch D1,
then `wrangler dev --local` serves worker.js on a free port with that D1, a local R2 bucket
and a local queue. Any failure raises with wrangler's output: a suite that claims to test
the Cloudflare adapters must not quietly skip them.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).resolve().parent / "wrangler.toml"
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
START_TIMEOUT_S = 90.0


class BridgeStartError(RuntimeError):
    pass


def wrangler_env() -> dict[str, str]:
    """No telemetry, no prompts, no colour codes in the captured output."""
    return {**os.environ, "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1", "CI": "1"}


def run_wrangler(*args: str, cwd: Path = ROOT, timeout: float = 180) -> str:
    """Run the pinned wrangler (`npm ci` installs it); raise with its output on failure."""
    if not WRANGLER.exists():
        raise BridgeStartError(f"{WRANGLER} is missing: run `npm ci` in {ROOT}")
    done = subprocess.run(
        [str(WRANGLER), *args],
        cwd=cwd,
        env=wrangler_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise BridgeStartError(f"wrangler {' '.join(args)} failed:\n{output}")
    return output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningBridge:
    url: str
    process: subprocess.Popen[bytes]
    state_dir: Path

    def stop(self) -> None:
        """Stop wrangler and its workerd (one process group), even if wrangler died first."""
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _signal(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


def _wait_until_ready(bridge: RunningBridge, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if bridge.process.poll() is not None:
            break
        try:
            if httpx.get(f"{bridge.url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    output = log.read_text()
    bridge.stop()
    raise BridgeStartError(f"wrangler dev did not serve the bridge:\n{output}")


def start_bridge() -> RunningBridge:
    state_dir = Path(tempfile.mkdtemp(prefix="cf-bridge-"))
    persist = str(state_dir / "state")
    try:
        run_wrangler(
            "d1",
            "migrations",
            "apply",
            "DB",
            "--local",
            "--config",
            str(CONFIG),
            "--persist-to",
            persist,
        )
    except BridgeStartError:
        shutil.rmtree(state_dir, ignore_errors=True)
        raise
    port = free_port()
    log = state_dir / "wrangler-dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(WRANGLER),
                "dev",
                "--local",
                "--config",
                str(CONFIG),
                "--persist-to",
                persist,
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--inspector-port",
                str(free_port()),
                "--show-interactive-dev-session=false",
            ],
            cwd=ROOT,
            env=wrangler_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    bridge = RunningBridge(f"http://127.0.0.1:{port}", process, state_dir)
    _wait_until_ready(bridge, log)
    return bridge


@cache
def shared_bridge() -> RunningBridge:
    """One bridge per test process, whichever suite asks first; stopped at exit."""
    bridge = start_bridge()
    atexit.register(bridge.stop)
    return bridge


POOL_TABLES = ("pool_pods", "pool_agents", "pool_state")  # migration 0011


def reset_d1(url: str) -> None:
    """Empty the bridge's tables: they outlive each test, the session shares one D1."""
    for table in ("jobs", "idempotency_keys", "api_keys", *POOL_TABLES):
        response = httpx.post(
            f"{url}/d1",
            json={"sql": f"DELETE FROM {table}", "params": [], "method": "run"},  # noqa: S608 - the tables named above
        )
        response.raise_for_status()
