"""The real local stack as separate processes: `avatar-edge serve` and `avatar-agent run`."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

API_KEY = "e2e-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    data_dir: Path
    edge: subprocess.Popen[bytes]
    agents: list[subprocess.Popen[bytes]]
    log_dir: Path

    def start_agent(self, engine: str = "preview", **extra: str) -> subprocess.Popen[bytes]:
        index = len(self.agents)
        log = (self.log_dir / f"agent-{index}.log").open("wb")
        agent = subprocess.Popen(
            [sys.executable, "-m", "gpu_agent.cli", "run", "--engine", engine],
            env={**self.env, "AGENT_ID": f"e2e-agent-{index}", **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.agents.append(agent)
        return agent

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "API_KEYS": API_KEY,
        "AGENT_TOKEN": "e2e-agent-token-0123456789",
        "CF_API_TOKEN": "e2e-queue-token-0123456789",
        "CF_ACCOUNT_ID": "local",
        "CF_QUEUE_ID": "avatar-jobs",
        "CF_API_BASE": f"{url}/client/v4",
        "EDGE_URL": url,
        "LOG_LEVEL": "INFO",
    }
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    edge = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_worker.local",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env=env,
        stdout=(log_dir / "edge.log").open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if edge.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"edge did not start:\n{(log_dir / 'edge.log').read_text()}")
        time.sleep(0.1)
    running = Stack(url, env, tmp_path / "data", edge, [], log_dir)
    try:
        yield running
    finally:
        for agent in running.agents:
            stop(agent)
        stop(edge)
