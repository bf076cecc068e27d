"""Start the local stack as real processes for benchmarks (Linux: reads /proc for memory)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "API_KEYS": API_KEY,
        "AGENT_TOKEN": "bench-agent-token-0123456789",
        "CF_API_TOKEN": "bench-queue-token-0123456789",
        "CF_ACCOUNT_ID": "local",
        "CF_QUEUE_ID": "avatar-jobs",
        "CF_API_BASE": f"{url}/client/v4",
        "EDGE_URL": url,
        "LOG_LEVEL": "WARNING",
    }


def start_edge(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = stack_env(url)
    edge = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_worker.local",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return edge, url, env
        except httpx.TransportError:
            time.sleep(0.1)
    edge.kill()
    raise RuntimeError("edge did not start")


def start_agent(env: dict[str, str], engine: str = "preview") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gpu_agent.cli", "run", "--engine", engine], env=env, cwd=ROOT
    )


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def memory_kib(pid: int, field: str) -> int:
    """`VmRSS` (now) or `VmHWM` (peak so far) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)
