"""The real local stack as separate processes: `avatar-edge serve` and `avatar-agent run`."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

API_KEY = "e2e-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)  # a test may have frozen it
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Stack:
    """One edge (restartable on the same port and data) and any number of agents."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp_path / "data"
        self.log_dir = tmp_path / "logs"
        self.log_dir.mkdir()
        self.env = {
            **os.environ,
            "API_KEYS": API_KEY,
            "AGENT_TOKEN": "e2e-agent-token-0123456789",
            "API_KEY_PEPPER": "e2e-api-key-pepper-0123456789",
            "SIGNING_SECRET": "e2e-signing-secret-0123456789",
            "CF_API_TOKEN": "e2e-queue-token-0123456789",
            "CF_ACCOUNT_ID": "local",
            "CF_QUEUE_ID": "avatar-jobs",
            "CF_API_BASE": f"{self.url}/client/v4",
            "EDGE_URL": self.url,
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.edge: subprocess.Popen[bytes] | None = None
        self.edge_starts = 0
        self.agents: list[subprocess.Popen[bytes]] = []

    def start_edge(self) -> None:
        self.edge_starts += 1
        log = (self.log_dir / f"edge-{self.edge_starts}.log").open("wb")
        self.edge = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge_worker.local",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.edge.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"edge did not start:\n{self.logs()}")
            time.sleep(0.1)

    def stop_edge(self) -> None:
        assert self.edge is not None
        stop(self.edge)

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

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=AUTH, timeout=30)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def close(self) -> None:
        for agent in self.agents:
            stop(agent)
        if self.edge is not None:
            stop(self.edge)


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """`stack_factory(**env)` starts an edge configured with extra environment variables."""
    made: list[Stack] = []

    def make(**env: str) -> Stack:
        directory = tmp_path / f"stack-{len(made)}"
        directory.mkdir()
        running = Stack(directory, env)
        made.append(running)
        running.start_edge()
        return running

    yield make
    for running in made:
        running.close()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory()


def submit(client: httpx.Client, audio: Path, resolution: str = "480p", **headers: str) -> str:
    with (EXAMPLES / "portrait.png").open("rb") as img, audio.open("rb") as wav:
        response = client.post(
            "/generate",
            files={"image": ("portrait.png", img), "audio": (audio.name, wav)},
            data={"prompt": "A presenter talking", "resolution": resolution},
            headers=headers,
        )
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


def wait_for(
    client: httpx.Client,
    job_id: str,
    done: Callable[[dict], bool],
    timeout: float = 120,
    seen: list[dict] | None = None,
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = client.get(f"/status/{job_id}").json()
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if seen is not None:
            seen.append(status)
        if done(status):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached the expected state: {status}")


def terminal(status: dict) -> bool:
    return status["status"] in ("completed", "failed", "cancelled", "expired")
