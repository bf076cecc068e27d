"""Start the local stack and benchmark servers as real processes (Linux: reads /proc for memory)."""

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_env(url: str, log_level: str = "WARNING") -> dict[str, str]:
    return {
        **os.environ,
        "API_KEYS": API_KEY,
        "AGENT_TOKEN": "bench-agent-token-0123456789",
        "API_KEY_PEPPER": "bench-api-key-pepper-0123456789",
        "SIGNING_SECRET": "bench-signing-secret-0123456789",
        "CF_API_TOKEN": "bench-queue-token-0123456789",
        "CF_ACCOUNT_ID": "local",
        "CF_QUEUE_ID": "avatar-jobs",
        "CF_API_BASE": f"{url}/client/v4",
        "EDGE_URL": url,
        "LOG_LEVEL": log_level,
    }


def start_server(
    module_argv: Sequence[str],
    url: str,
    env: Mapping[str, str],
    *,
    root: Path = ROOT,
    stderr: IO[bytes] | int | None = None,
    timeout: float = 30,
) -> subprocess.Popen[bytes]:
    """`python -m <module_argv>` from `root`, returned once `url`/health answers 200."""
    process = subprocess.Popen(
        [sys.executable, "-m", *module_argv],
        env={**env, "PYTHONPATH": str(root)},
        cwd=root,
        stderr=stderr,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"{module_argv[0]} did not start (exit status {process.returncode})")


def start_edge(
    data_dir: Path,
    *,
    log_level: str = "WARNING",
    root: Path = ROOT,
    stderr: IO[bytes] | int | None = None,
) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """`avatar-edge serve` on a free port, with the data of `data_dir`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = stack_env(url, log_level)
    argv = ["edge_worker.local", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    return start_server(argv, url, env, root=root, stderr=stderr), url, env


def serve(app: Any, argv: Sequence[str] | None = None) -> None:
    """Serve a baseline app on `--port` with the uvicorn options `avatar-edge serve` uses."""
    import uvicorn  # only the baselines' processes: bench.fanout's helpers run without it

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args(argv).port
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def start_agent(env: dict[str, str], engine: str = "preview") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gpu_agent.cli", "run", "--engine", engine], env=env, cwd=ROOT
    )


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def memory_kib(pid: int, field: str) -> int:
    """`VmRSS` (now) or `VmHWM` (peak so far) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
