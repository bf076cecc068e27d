"""The README's examples (curl, the `avatar` command, the Python client), run as written
against `avatar dev` in a fresh directory.

Only the port changes (a free one instead of 8787), so a developer's running `make dev` is
left alone. The directory holds what a fresh clone has at its root and nothing else, so the
test also sees any file the walkthrough leaves behind.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import EXAMPLES, ROOT, free_port
from tests.e2e.test_upload_to_mp4 import audio_seconds, check_mp4

README = ROOT / "README.md"
# What `make dev` leaves in a fresh clone, and what the walkthrough may add to it.
CHECKOUT = {"examples", "README.md", ".venv"}
EXPECTED_AFTER = CHECKOUT | {".avatar", "out.mp4"}


def blocks(readme: str, heading: str, language: str) -> list[str]:
    """The fenced `language` blocks of the section under `## heading`."""
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    found = re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert found, f"README has no {language} block under {heading!r}"
    return found


def replies_and_words(output: str) -> tuple[list[dict], list[str]]:
    """curl prints bodies without a trailing newline: split JSON bodies from other output."""
    decoder = json.JSONDecoder()
    replies: list[dict] = []
    words: list[str] = []
    position = 0
    while position < len(output):
        if output[position].isspace():
            position += 1
        elif output[position] == "{":
            reply, position = decoder.raw_decode(output, position)
            replies.append(reply)
        else:
            end = re.compile(r"[\s{]").search(output, position)
            stop = end.start() if end else len(output)
            words.append(output[position:stop])
            position = stop
    return replies, words


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "clone"
    root.mkdir()
    (root / "examples").symlink_to(EXAMPLES)
    (root / "README.md").symlink_to(README)
    (root / ".venv").symlink_to(Path(sys.prefix))
    return root


@pytest.fixture
def dev_stack(checkout: Path, tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """`avatar dev` as `make dev` starts it, with nothing configured: it makes its own key."""
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AVATAR_", "API_KEY", "AGENT_", "CF_", "ENGINE", "EDGE_"))
    }
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "avatar_client.cli", "dev", "--port", str(port)],
        cwd=checkout,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "dev.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(0.2)
        yield port, env
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_readme_walkthrough_runs_as_written(
    dev_stack: tuple[int, dict[str, str]], checkout: Path
) -> None:
    port, env = dev_stack
    readme = README.read_text()
    script = "\n".join(blocks(readme, "Try it with curl", "bash")).replace(":8787", f":{port}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    replies, words = replies_and_words(done.stdout)

    health = replies[0]
    assert health["status"] == "ok"
    assert health["limits"]["max_request_bytes"] > 0

    errors = [reply["error"] for reply in replies if reply.get("error")]
    assert [error["code"] for error in errors] == ["UNSUPPORTED_MEDIA"], errors
    assert errors[0]["details"]["field"] == "image"

    cancelled = [reply for reply in replies if reply.get("status") == "cancelled"]
    assert cancelled and cancelled[0]["stage"] == "cancelled"
    assert cancelled[0]["completed_at"] is None

    listings = [reply["jobs"] for reply in replies if "jobs" in reply]
    assert len(listings) == 2
    everything, finished = listings
    # first, fast, parallel, cancelled, from uploads, mixed, idempotent once
    assert len(everything) == 7
    assert [job["parallel"] for job in everything].count("auto") == 1
    assert {job["status"] for job in finished} <= {"completed", "cancelled"}
    assert any(job["status"] == "cancelled" for job in finished)

    assert words[0] == words[1], done.stdout  # the same Idempotency-Key: the same job
    assert words[2] == "out.mp4", done.stdout  # `avatar generate` prints where the MP4 went

    check_mp4(checkout / "out.mp4", audio_seconds(EXAMPLES / "speech.wav"), 480)
    (checkout / "out.mp4").unlink()

    (code,) = blocks(readme, "Python client", "python")
    client = subprocess.run(
        [sys.executable, "-c", code],
        cwd=checkout,
        env={**env, "AVATAR_URL": f"http://127.0.0.1:{port}"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert client.returncode == 0, client.stdout + client.stderr
    assert "\ncompleted\n" in client.stdout, client.stdout
    check_mp4(checkout / "out.mp4", audio_seconds(EXAMPLES / "speech.wav"), 480)
    assert {path.name for path in checkout.iterdir()} == EXPECTED_AFTER
