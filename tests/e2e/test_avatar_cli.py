"""The `avatar` command as a user runs it, against the real local edge and agent."""

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import API_KEY, EXAMPLES, ROOT, Stack
from tests.e2e.test_upload_to_mp4 import audio_seconds, check_mp4

ROOT_PYTHONPATH = {"PYTHONPATH": str(ROOT)}


def avatar(
    stack: Stack, cwd: Path, *argv: str, key: str | None = API_KEY
) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in stack.env.items()
        if name not in ("AVATAR_API_KEY", "API_KEYS", "API_KEY")
    }
    env.update(ROOT_PYTHONPATH, AVATAR_URL=stack.url)
    if key is not None:
        env["AVATAR_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "avatar_client.cli", *argv],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=env,
    )


def ok(done: subprocess.CompletedProcess[str], stack: Stack) -> str:
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{stack.logs()}"
    return done.stdout


def generate_argv(*extra: str) -> list[str]:
    return [
        "generate",
        str(EXAMPLES / "portrait.png"),
        str(EXAMPLES / "speech.wav"),
        "--prompt",
        "A presenter",
        "--resolution",
        "480p",
        *extra,
    ]


def test_generate_status_list_cancel_and_download(stack: Stack, tmp_path: Path) -> None:
    # No agent yet: the first job stays pending, so it can be cancelled.
    queued = json.loads(ok(avatar(stack, tmp_path, *generate_argv("--no-wait", "--json")), stack))
    job_id = queued["job_id"]
    assert queued["status"] == "pending"
    status = ok(avatar(stack, tmp_path, "status", job_id), stack)
    assert status.startswith(f"{job_id}  pending  queued 0%")
    cancelled = json.loads(ok(avatar(stack, tmp_path, "cancel", job_id, "--json"), stack))
    assert cancelled["status"] == "cancelled"
    waited = avatar(stack, tmp_path, "wait", job_id)
    assert waited.returncode == 1
    assert waited.stderr.splitlines() == ["cancelled 0%", f"error: job {job_id} ended cancelled"]

    stack.start_agent()
    made = avatar(stack, tmp_path, *generate_argv("--json"))
    completed = json.loads(ok(made, stack))
    assert made.stderr == ""  # --json without a terminal: no progress at all
    video_id = completed["job_id"]
    assert completed["status"] == "completed" and completed["engine"] == "preview"
    assert completed["output"] == f"{video_id}.mp4"
    size = (tmp_path / f"{video_id}.mp4").stat().st_size
    too_late = avatar(stack, tmp_path, "cancel", video_id)
    assert (too_late.returncode, too_late.stderr.split(":")[:2]) == (1, ["error", " CONFLICT"])

    listed = json.loads(ok(avatar(stack, tmp_path, "list", "--json"), stack))
    assert [job["job_id"] for job in listed] == [video_id, job_id]
    only = ok(avatar(stack, tmp_path, "list", "--status", "cancelled"), stack)
    assert [line.split()[0] for line in only.splitlines()] == [job_id]

    out = tmp_path / "copy" / "again.mp4"
    given = ("--url", stack.url, "--api-key", API_KEY)  # the options, not the environment
    fetched = avatar(stack, tmp_path, "download", video_id, "-o", str(out), *given, key="wrong")
    assert ok(fetched, stack) == f"{out}\n"
    result = json.loads(ok(avatar(stack, tmp_path, "result", video_id, "--json"), stack))
    assert out.stat().st_size == size == result["size_bytes"]


def test_generate_shows_progress_lines_and_reads_the_dev_key(stack: Stack, tmp_path: Path) -> None:
    """No key given: like after `avatar dev`, it is in .avatar/dev-secrets.json."""
    secrets = tmp_path / ".avatar" / "dev-secrets.json"
    secrets.parent.mkdir()
    secrets.write_text(json.dumps({"API_KEYS": API_KEY}))
    assert ok(avatar(stack, tmp_path, "key", key=None), stack) == f"{API_KEY}\n"
    stack.start_agent()
    out = tmp_path / "out.mp4"
    done = avatar(stack, tmp_path, *generate_argv("-o", str(out)), key=None)
    lines = ok(done, stack).splitlines()
    assert lines[0] == str(out) and lines[1].startswith("job_id: ")
    progress = done.stderr.splitlines()
    assert progress[0].startswith("job ") and progress[0].endswith(" submitted")
    assert progress[-2] == "done 100%"
    assert progress[-1] == "note: made by the preview engine, not by InfiniteTalk"
    check_mp4(out, audio_seconds(EXAMPLES / "speech.wav"), 480)
