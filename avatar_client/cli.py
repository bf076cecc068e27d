"""The `avatar` command: generate a video, inspect jobs, or run the local stack (`avatar dev`).

Only this module and `dev` read the environment; everything below them gets settings passed in.
"""

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from avatar_client.client import ApiError, AvatarClient, ConnectionFailed
from contracts import JobStatus, JobView, Quality, ResultView
from contracts.media import EngineName

DEFAULT_URL = "http://127.0.0.1:8787"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

ClientFactory = Callable[[str, str], AvatarClient]
# tqdm's own rate and ETA would describe polls, not the job: show the server's instead.
_BAR_FORMAT = "{desc:<11} {percentage:3.0f}%|{bar:30}| {elapsed}{postfix}"


class UsageError(Exception):
    """A problem with the command line or configuration (exit status 2)."""


def resolve_url(env: Mapping[str, str], explicit: str | None) -> str:
    return explicit or env.get("AVATAR_URL") or DEFAULT_URL


def resolve_api_key(env: Mapping[str, str], explicit: str | None) -> str:
    """`--api-key`, then `AVATAR_API_KEY`, then the edge's own names (a shell set up for the
    local edge can call it as is)."""
    if explicit:
        return explicit
    if env.get("AVATAR_API_KEY"):
        return env["AVATAR_API_KEY"]
    for name in ("API_KEYS", "API_KEY"):
        keys = [k.strip() for k in env.get(name, "").split(",") if k.strip()]
        if keys:
            return keys[0]
    raise UsageError(
        "no API key: pass --api-key or set AVATAR_API_KEY "
        "(`avatar dev` prints a ready-to-paste export line)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatar", description="Talking-avatar video API client and local dev stack."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    conn = argparse.ArgumentParser(add_help=False)
    conn.add_argument("--url", help=f"API base URL (env AVATAR_URL, default {DEFAULT_URL})")
    conn.add_argument("--api-key", help="API key (env AVATAR_API_KEY, else API_KEYS/API_KEY)")

    gen = sub.add_parser("generate", parents=[conn], help="create a video and download it")
    gen.add_argument("image", type=Path, help="portrait, PNG or JPEG")
    gen.add_argument("audio", type=Path, help="speech, WAV or MP3")
    gen.add_argument("--prompt", required=True, help="text describing the scene")
    gen.add_argument("-o", "--output", type=Path, required=True, help="where to write the MP4")
    gen.add_argument("--resolution", choices=["480p", "720p"], default="720p")
    gen.add_argument("--seed", type=int)
    gen.add_argument(
        "--quality",
        choices=[quality.value for quality in Quality],
        default=Quality.STANDARD.value,
        help="standard: upstream's 40 sampling steps; fast: a distilled LoRA at 4 steps, "
        "several times quicker, lower quality (default: %(default)s)",
    )
    gen.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls")

    status = sub.add_parser("status", parents=[conn], help="print a job's status as JSON")
    status.add_argument("job_id")
    result = sub.add_parser("result", parents=[conn], help="print a job's result as JSON")
    result.add_argument("job_id")

    dev = sub.add_parser("dev", help="run the local edge and one GPU agent together")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8787)
    dev.add_argument("--data-dir", type=Path, default=Path(".avatar"))
    dev.add_argument(
        "--engine",
        choices=list(EngineName),
        help="agent engine (env ENGINE, default preview)",
    )
    dev.add_argument("--reload", action="store_true", help="restart both when code changes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: the real environment, streams and HTTP client."""
    return run(argv, env=os.environ, make_client=AvatarClient, stdout=sys.stdout, stderr=sys.stderr)


def run(
    argv: Sequence[str] | None,
    *,
    env: Mapping[str, str],
    make_client: ClientFactory,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Parse and dispatch; returns the exit status (argparse itself exits 2 on bad syntax)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "dev":
        # Imported here so the client commands never need the dev-only dependencies.
        from avatar_client import dev

        options = dev.DevOptions(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            engine=args.engine,
            reload=args.reload,
        )
        return dev.run_dev(options, env=env, cwd=Path.cwd(), out=stdout)
    try:
        url = resolve_url(env, args.url)
        key = resolve_api_key(env, args.api_key)
        with make_client(url, key) as client:
            if args.command == "generate":
                return _generate(client, args, stdout=stdout, stderr=stderr)
            view: JobView | ResultView
            if args.command == "status":
                view = client.status(args.job_id)
            else:
                view = client.result(args.job_id)
            print(view.model_dump_json(indent=2), file=stdout)
            return EXIT_OK
    except UsageError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_USAGE
    except ConnectionFailed as exc:
        print(f"error: {exc.message}", file=stderr)
        return EXIT_FAILED
    except ApiError as exc:
        print(f"error: {exc.code}: {exc.message}", file=stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILED


def _generate(
    client: AvatarClient, args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO
) -> int:
    for label, path in (("image", args.image), ("audio", args.audio)):
        if not path.is_file():
            raise UsageError(f"{label} file not found: {path}")
    # Before the upload: a bad -o must not cost a whole generation.
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the output directory: {exc}") from exc
    job = client.generate(
        args.image,
        args.audio,
        args.prompt,
        resolution=args.resolution,
        seed=args.seed,
        quality=args.quality,
    )
    print(f"job {job.job_id} submitted", file=stderr)
    try:
        with tqdm(total=100, file=stderr, bar_format=_BAR_FORMAT) as bar:
            progress = _ProgressView(bar)
            progress(job)
            job = client.wait(job.job_id, poll_interval=args.poll_interval, on_update=progress)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; job {job.job_id} keeps running: `avatar status {job.job_id}`",
            file=stderr,
        )
        return EXIT_INTERRUPTED
    if job.status is not JobStatus.COMPLETED:
        print(f"error: {_failure_text(job)}", file=stderr)
        return EXIT_FAILED
    result = client.result(job.job_id)
    path = client.download(result.url, args.output)
    if job.engine == "preview":
        print("note: made by the preview engine, not by InfiniteTalk", file=stderr)
    print(path, file=stdout)
    print(f"job_id: {job.job_id}", file=stdout)
    return EXIT_OK


def _failure_text(job: JobView) -> str:
    if job.status is JobStatus.FAILED and job.error is not None:
        return f"{job.error.code}: {job.error.message}"
    return f"job {job.job_id} ended {job.status.value}"


class _ProgressView:
    """Mirrors a JobView onto a tqdm bar: percent, stage, queue position and ETA."""

    def __init__(self, bar: tqdm) -> None:
        self._bar = bar

    def __call__(self, job: JobView) -> None:
        self._bar.n = round(job.progress, 1)
        self._bar.set_description_str(job.stage.value, refresh=False)
        self._bar.set_postfix_str(describe_wait(job), refresh=False)
        self._bar.refresh()


def describe_wait(job: JobView) -> str:
    """The bar's postfix: jobs ahead while pending, ETA once the server knows one."""
    parts = []
    if job.status is JobStatus.PENDING and job.queue_position is not None:
        parts.append(f"{job.queue_position} ahead in queue")
    if job.eta_seconds is not None:
        parts.append(f"eta {_duration(job.eta_seconds)}")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


if __name__ == "__main__":  # pragma: no cover - `python -m avatar_client.cli` (e2e tests)
    raise SystemExit(main())
