"""The `avatar` command: make a video, inspect and manage jobs, or run the local stack.

Only this module and `dev` read the environment; everything below them gets settings passed in.
"""

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from avatar_client import AvatarClient, Job, JobHandle
from avatar_client.config import resolve_api_key, resolve_url
from avatar_client.errors import AvatarError, ConnectionFailed, MissingApiKey, WaitTimeout
from avatar_client.progress import ProgressDisplay, plain_line
from avatar_client.tables import table, timestamp
from contracts import JobStatus, Quality, Resolution, SpeakerMode
from contracts.media import EngineName
from contracts.webhooks import WebhookDeliveries, WebhookEventView

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

ClientFactory = Callable[[str | None, str | None, Mapping[str, str]], AvatarClient]
DEFAULT_LIST_LIMIT = 20
DELIVERY_COLUMNS = (
    "EVENT",
    "TYPE",
    "ATTEMPTS",
    "LAST STATUS",
    "LATENCY",
    "NEXT RETRY",
    "STATE",
)


class UsageError(Exception):
    """A problem with the command line or configuration (exit status 2)."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help: the value, or the help's own `(default: ...)`.

    argparse's ArgumentDefaultsHelpFormatter would print `(default: None)` for options whose
    default comes from elsewhere (the environment, the job id); those say so themselves.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default: " in text or not action.option_strings:
            return text
        if action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"

    def _split_lines(self, text: str, width: int) -> list[str]:
        """Never split a name such as `dev-secrets.json` at its hyphen."""
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatar",
        description="Talking-avatar video API client and local dev stack.",
        formatter_class=_HelpFormatter,
        epilog="example:\n  avatar generate portrait.png speech.wav --prompt 'A presenter'\n"
        "run `avatar COMMAND --help` for each command's options and defaults",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    conn = argparse.ArgumentParser(add_help=False)
    conn.add_argument(
        "--url", help="API base URL (default: $AVATAR_URL, else http://127.0.0.1:8787)"
    )
    conn.add_argument(
        "--api-key",
        help="API key (default: $AVATAR_API_KEY, else for a local URL the key `avatar dev` "
        "keeps in .avatar/dev-secrets.json)",
    )
    out = argparse.ArgumentParser(add_help=False, parents=[conn])
    out.add_argument("--json", action="store_true", help="print JSON on stdout, nothing else there")

    def command(
        name: str,
        help_text: str,
        example: str,
        within: "argparse._SubParsersAction[argparse.ArgumentParser]" = sub,
    ) -> argparse.ArgumentParser:
        return within.add_parser(
            name,
            parents=[out],
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            formatter_class=_HelpFormatter,
            epilog=f"example:\n  {example}",
        )

    gen = command(
        "generate",
        "create a video, show its progress and download the MP4",
        "avatar generate examples/portrait.png examples/speech.wav "
        "--prompt 'A friendly presenter' --resolution 480p -o out.mp4",
    )
    gen.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE",
        help="IMAGE AUDIO: the portrait (PNG or JPEG) and the speech (WAV or MP3, any "
        "length), each a file or an http(s) URL; with --video, AUDIO alone",
    )
    gen.add_argument(
        "--video",
        help="dub this video (MP4, MOV or WebM) instead of an image (default: none)",
    )
    gen.add_argument(
        "--audio2", help="a second speaker's track: two people talking (default: none)"
    )
    gen.add_argument(
        "--speaker-mode",
        choices=[mode.value for mode in SpeakerMode],
        help="two speakers: one after the other or at the same time (default: sequential)",
    )
    gen.add_argument(
        "--speaker-boxes",
        type=_boxes,
        metavar="X1,Y1,X2,Y2;X1,Y1,X2,Y2",
        help="two speakers: each speaker's box in the image's pixels, left then right "
        "(default: the agent finds two faces, else takes the left and right halves)",
    )
    gen.add_argument("--prompt", required=True, help="text describing the scene")
    gen.add_argument(
        "-o",
        "--output",
        type=Path,
        help="where to write the MP4 (default: JOB_ID.mp4 in the current directory)",
    )
    gen.add_argument(
        "--resolution",
        choices=[r.value for r in Resolution],
        default=Resolution.P720.value,
        help="the video's short side",
    )
    gen.add_argument("--seed", type=int, help="sampling seed (default: a random one)")
    gen.add_argument(
        "--quality",
        choices=[quality.value for quality in Quality],
        default=Quality.STANDARD.value,
        help="standard: upstream's 40 sampling steps; fast: a distilled LoRA at 4 steps, "
        "several times quicker, lower quality",
    )
    gen.add_argument(
        "--parallel",
        default="off",
        help="off (default), auto, or at most N segments (2-32): long audio is cut at "
        "silences, rendered on several GPU agents at once and stitched",
    )
    gen.add_argument(
        "--no-wait",
        action="store_true",
        help="print the job id (the job with --json) and return without waiting",
    )
    _timeout_option(gen)

    for name, help_text in (
        ("status", "show a job's status"),
        ("result", "show a completed job's signed video URL"),
        ("cancel", "cancel a pending or processing job"),
    ):
        command(name, help_text, f"avatar {name} JOB_ID").add_argument("job_id")

    wait = command(
        "wait",
        "show a job's progress until it ends; exit 0 only if it completed",
        "avatar wait JOB_ID && avatar download JOB_ID",
    )
    wait.add_argument("job_id")
    _timeout_option(wait)

    download = command(
        "download", "download a completed job's MP4", "avatar download JOB_ID -o out.mp4"
    )
    download.add_argument("job_id")
    download.add_argument(
        "-o", "--output", type=Path, help="where to write it (default: JOB_ID.mp4 here)"
    )

    jobs = command(
        "list", "list your jobs, newest first", "avatar list --status pending,processing"
    )
    jobs.add_argument(
        "--status",
        type=_statuses,
        help="only these statuses, comma-separated: "
        + ",".join(s.value for s in JobStatus)
        + " (default: all)",
    )
    jobs.add_argument(
        "--limit", type=_positive, default=DEFAULT_LIST_LIMIT, help="at most this many jobs"
    )

    usage = command(
        "usage",
        "show your daily usage by quality: jobs, audio, video and GPU seconds",
        "avatar usage --from 2026-01-01 --to 2026-01-31",
    )
    usage.add_argument("--from", dest="first", help="first UTC day, YYYY-MM-DD")
    usage.add_argument(
        "--to", dest="last", help="last UTC day, included (default: today; 30 days in all)"
    )

    webhooks = sub.add_parser(
        "webhooks",
        help="your webhooks' signing secret, a job's deliveries, a redelivery",
        description="Your webhooks' signing secret, a job's webhook deliveries, a redelivery.",
        formatter_class=_HelpFormatter,
        epilog="example:\n  avatar webhooks deliveries JOB_ID",
    )
    actions = webhooks.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_text, takes_job in (
        ("secret", "print the secret that signs your webhooks (whsec_...)", False),
        (
            "rotate",
            "make a new signing secret; for the edge's grace window (24 h by default) "
            "webhooks are signed with the old one too",
            False,
        ),
        ("deliveries", "list a job's webhook events and how their delivery went", True),
        ("redeliver", "send a job's last webhook event again, with the same webhook-id", True),
    ):
        example = f"avatar webhooks {name}" + (" JOB_ID" if takes_job else "")
        action = command(name, help_text, example, within=actions)
        if takes_job:
            action.add_argument("job_id")

    sub.add_parser(
        "key",
        parents=[conn],
        help="print the API key the other commands would use",
        description="Print the API key the other commands would use.",
        formatter_class=_HelpFormatter,
        epilog="example:\n  export AVATAR_API_KEY=$(avatar key)",
    )

    dev = sub.add_parser(
        "dev",
        help="run the local edge and one GPU agent together",
        description="Run the local edge, its queue and one GPU agent; Ctrl-C stops all.",
        formatter_class=_HelpFormatter,
        epilog="example:\n  avatar dev --engine preview",
    )
    dev.add_argument("--host", default="127.0.0.1", help="address the edge listens on")
    dev.add_argument("--port", type=int, default=8787, help="port the edge listens on")
    dev.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".avatar"),
        help="jobs, videos and the generated secrets (dev-secrets.json)",
    )
    dev.add_argument(
        "--engine",
        choices=list(EngineName),
        help="agent engine (default: $ENGINE, else preview)",
    )
    dev.add_argument("--reload", action="store_true", help="restart both when code changes")

    serve = sub.add_parser(
        "serve",
        help="run the edge and N GPU agents in one process tree (the all-in-one deployment)",
        description="Run the edge and its agents for production on one machine (a RunPod "
        "pod). Every secret comes from the environment; SIGTERM hands back running jobs.",
        formatter_class=_HelpFormatter,
        epilog="example:\n  avatar serve --engine infinitetalk --agents 1",
    )
    serve.add_argument("--host", default="0.0.0.0", help="address the edge listens on")  # noqa: S104
    serve.add_argument(
        "--port", type=int, help="port the edge listens on (default: $PORT, else 8787)"
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        help="jobs and queue (SQLite), and blobs with BLOB_STORE=fs "
        "(default: $DATA_DIR, else /runpod-volume/avatar)",
    )
    serve.add_argument(
        "--engine", choices=list(EngineName), help="agent engine (default: $ENGINE, else preview)"
    )
    serve.add_argument("--agents", type=_positive, default=1, help="agents to run")
    return parser


def _timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        help="stop waiting after this many seconds; the job keeps running (default: no limit)",
    )


def _statuses(text: str) -> list[JobStatus]:
    try:
        return [JobStatus(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: the real environment, streams and HTTP client."""
    return run(argv, env=os.environ, make_client=_make_client, stdout=sys.stdout, stderr=sys.stderr)


def _make_client(url: str | None, api_key: str | None, env: Mapping[str, str]) -> AvatarClient:
    return AvatarClient(url, api_key, env=env)


def run(
    argv: Sequence[str] | None,
    *,
    env: Mapping[str, str],
    make_client: ClientFactory,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Parse and dispatch; returns the exit status (argparse itself exits 2 on bad syntax)."""
    args = build_parser().parse_args(argv)
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
    if args.command == "serve":
        from avatar_client import serve

        try:
            serving = serve.ServeOptions.from_env(
                env,
                host=args.host,
                port=args.port,
                data_dir=args.data_dir,
                engine=args.engine,
                agents=args.agents,
            )
        except ValueError as exc:
            print(f"error: PORT and SHUTDOWN_GRACE_SECONDS must be numbers ({exc})", file=stderr)
            return EXIT_USAGE
        return serve.run_serve(serving, env=env, out=stdout)
    command = _Command(args, stdout=stdout, stderr=stderr)
    try:
        if args.command == "key":
            url = resolve_url(args.url, env)
            print(resolve_api_key(args.api_key, env, url, Path.cwd()), file=stdout)
            return EXIT_OK
        with make_client(args.url, args.api_key, env) as client:
            return command.dispatch(client)
    except _Reported as exc:
        return exc.exit_code
    except UsageError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_USAGE
    except MissingApiKey as exc:
        print(f"error: {exc.message}", file=stderr)
        return EXIT_USAGE
    except ConnectionFailed as exc:
        print(f"error: {exc.message}", file=stderr)
        return EXIT_FAILED
    except AvatarError as exc:
        print(f"error: {exc.code}: {exc.message}", file=stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILED


class _Command:
    """One parsed command line, run against a client."""

    def __init__(self, args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO) -> None:
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self.json: bool = getattr(args, "json", False)

    def dispatch(self, client: AvatarClient) -> int:
        handlers: dict[str, Callable[[AvatarClient], int]] = {
            "generate": self.generate,
            "status": self.status,
            "result": self.result,
            "cancel": self.cancel,
            "wait": self.wait,
            "download": self.download,
            "list": self.list,
            "usage": self.usage,
            "webhooks": self.webhooks,
        }
        return handlers[self.args.command](client)

    def generate(self, client: AvatarClient) -> int:
        args = self.args
        expected = 1 if args.video else 2
        if len(args.inputs) != expected:
            raise UsageError(
                "give AUDIO with --video" if args.video else "give IMAGE and AUDIO (or --video)"
            )
        image = None if args.video else _media("image", args.inputs[0])
        audio = _media("audio", args.inputs[-1])
        video = _media("video", args.video) if args.video else None
        audio2 = _media("audio2", args.audio2) if args.audio2 else None
        if audio2 is None and (args.speaker_mode or args.speaker_boxes):
            raise UsageError("--speaker-mode and --speaker-boxes need --audio2")
        if args.output is not None:
            _prepare_output(args.output)  # before the upload: a bad -o must not cost a job
        handle = client.submit(
            image,
            audio,
            args.prompt,
            resolution=args.resolution,
            seed=args.seed,
            quality=args.quality,
            parallel=None if args.parallel == "off" else args.parallel,  # older servers
            video=video,
            audio2=audio2,
            speaker_mode=args.speaker_mode,
            speaker_boxes=args.speaker_boxes,
        )
        if args.no_wait:
            if self.json:
                self._print_json(_fields(handle.status()))
            else:
                print(handle.id, file=self.stdout)
            return EXIT_OK
        self._note(f"job {handle.id} submitted")
        job = self._wait(handle, then=f"avatar download {handle.id}")
        if job.status is not JobStatus.COMPLETED:
            return self._ended_badly(job)
        path = job.download(args.output or Path(f"{job.id}.mp4"))
        if job.engine == EngineName.PREVIEW:
            self._note("note: made by the preview engine, not by InfiniteTalk")
        if self.json:
            self._print_json({**_fields(job), "output": str(path)})
        else:
            print(path, file=self.stdout)
            print(f"job_id: {job.id}", file=self.stdout)
        return EXIT_OK

    def status(self, client: AvatarClient) -> int:
        self._show_job(client.job(self.args.job_id).status())
        return EXIT_OK

    def result(self, client: AvatarClient) -> int:
        result = client.job(self.args.job_id).result()
        if self.json:
            self._print_json(_fields(result))
        else:
            print(result.url, file=self.stdout)
            print(
                f"expires {result.expires_at.isoformat()}, {result.size_bytes} bytes, "
                f"{result.duration_seconds:g} s, {result.width}x{result.height}",
                file=self.stdout,
            )
        return EXIT_OK

    def cancel(self, client: AvatarClient) -> int:
        self._show_job(client.job(self.args.job_id).cancel())
        return EXIT_OK

    def wait(self, client: AvatarClient) -> int:
        handle = client.job(self.args.job_id)
        job = self._wait(handle, then=f"avatar download {handle.id}")
        if job.status is not JobStatus.COMPLETED:
            return self._ended_badly(job)
        self._show_job(job)
        return EXIT_OK

    def download(self, client: AvatarClient) -> int:
        job_id = self.args.job_id
        output = self.args.output or Path(f"{job_id}.mp4")
        _prepare_output(output)
        result = client.job(job_id).result()
        path = result.download(output)
        if self.json:
            self._print_json({**_fields(result), "output": str(path)})
        else:
            print(path, file=self.stdout)
        return EXIT_OK

    def list(self, client: AvatarClient) -> int:
        jobs: Iterable[Job] = client.jobs(status=self.args.status, limit=self.args.limit)
        if self.json:
            self._print_json([_fields(job) for job in jobs])
            return EXIT_OK
        for job in jobs:
            print(
                f"{job.id}  {job.status.value:<10}  {job.created_at.isoformat()}  "
                f"{plain_line(job)}",
                file=self.stdout,
            )
        return EXIT_OK

    def usage(self, client: AvatarClient) -> int:
        report = client.usage(self.args.first, self.args.last)
        if self.json:
            self._print_json(_fields(report))
            return EXIT_OK
        for b in report.buckets:
            print(
                f"{b.day.isoformat()}  {b.quality.value:<8}  created {b.jobs_created}  "
                f"completed {b.jobs_completed}  failed {b.jobs_failed}  "
                f"audio {b.audio_seconds:.1f} s  video {b.video_seconds:.1f} s  "
                f"GPU {b.gpu_seconds:.1f} s",
                file=self.stdout,
            )
        return EXIT_OK

    def webhooks(self, client: AvatarClient) -> int:
        action = self.args.action
        if action in ("secret", "rotate"):
            secret = (
                client.webhook_secret() if action == "secret" else client.rotate_webhook_secret()
            )
            if self.json:
                self._print_json({"secret": secret})
            else:
                print(secret, file=self.stdout)
        elif action == "deliveries":
            deliveries = client.webhook_deliveries(self.args.job_id)
            if self.json:
                self._print_json(_fields(deliveries))
            else:
                self._print_deliveries(deliveries)
        else:
            event = client.redeliver_webhook(self.args.job_id)
            if self.json:
                self._print_json(_fields(event))
            else:
                print(
                    f"{event.webhook_id}  {event.type.value}  queued again for {event.url}",
                    file=self.stdout,
                )
        return EXIT_OK

    def _print_deliveries(self, deliveries: WebhookDeliveries) -> None:
        if deliveries.webhook_url is None:
            print(f"job {deliveries.job_id} has no webhook", file=self.stdout)
        else:
            events = ", ".join(event.value for event in deliveries.webhook_events)
            print(f"webhook {deliveries.webhook_url} for {events}", file=self.stdout)
        if not deliveries.events:
            print("no events yet", file=self.stdout)
            return
        for line in table(DELIVERY_COLUMNS, [_delivery_row(e) for e in deliveries.events]):
            print(line, file=self.stdout)

    def _wait(self, handle: JobHandle, *, then: str) -> Job:
        """Wait with a progress display; on Ctrl-C or a timeout say how to pick it up again."""
        live = self.stderr.isatty()
        display = ProgressDisplay(self.stderr, live=live) if live or not self.json else None
        resume = f"resume with `avatar wait {handle.id}`, then `{then}`"
        try:
            try:
                return handle.wait(on_update=display, timeout=self.args.timeout)
            finally:
                if display is not None:
                    display.close()
        except KeyboardInterrupt:
            print(f"interrupted; job {handle.id} keeps running: {resume}", file=self.stderr)
            raise _Reported(EXIT_INTERRUPTED) from None
        except WaitTimeout:
            print(
                f"error: job {handle.id} still running after {self.args.timeout:g} s; {resume}",
                file=self.stderr,
            )
            raise _Reported(EXIT_FAILED) from None

    def _ended_badly(self, job: Job) -> int:
        if job.status is JobStatus.FAILED and job.error is not None:
            print(f"error: {job.error.code}: {job.error.message}", file=self.stderr)
        else:
            print(f"error: job {job.id} ended {job.status.value}", file=self.stderr)
        if self.json:
            self._print_json(_fields(job))
        return EXIT_FAILED

    def _show_job(self, job: Job) -> None:
        if self.json:
            self._print_json(_fields(job))
            return
        print(f"{job.id}  {job.status.value}  {plain_line(job)}", file=self.stdout)
        if job.error is not None:
            print(f"error: {job.error.code}: {job.error.message}", file=self.stdout)

    def _note(self, text: str) -> None:
        if not self.json:
            print(text, file=self.stderr)

    def _print_json(self, value: Any) -> None:
        print(json.dumps(value, indent=2), file=self.stdout)


class _Reported(Exception):
    """The user has been told what happened; only the exit status is left to return."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


def _delivery_row(event: WebhookEventView) -> tuple[str, ...]:
    """The event's last attempt: its answer (or why none came), latency and next retry."""
    last = event.attempts[-1] if event.attempts else None
    status = ""
    if last is not None:
        status = str(last.status_code) if last.status_code is not None else "no-answer"
    return (
        event.webhook_id,
        event.type.value,
        str(len(event.attempts)),
        status,
        f"{last.latency_ms}ms" if last else "",
        timestamp(last.next_retry_at) if last else "",
        event.state.value,
    )


def _fields(view: Any) -> Any:
    return view.model_dump(mode="json")


def _boxes(value: str) -> list[list[int]]:
    """`X1,Y1,X2,Y2;X1,Y1,X2,Y2`: two boxes of whole pixels (the server checks the rest)."""
    try:
        boxes = [[int(n) for n in box.split(",")] for box in value.split(";")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            "boxes are whole numbers: X1,Y1,X2,Y2;X1,Y1,X2,Y2"
        ) from None
    if len(boxes) != 2 or any(len(box) != 4 for box in boxes):
        raise argparse.ArgumentTypeError("give two boxes: X1,Y1,X2,Y2;X1,Y1,X2,Y2")
    return boxes


def _media(label: str, value: str) -> str | Path:
    """An http(s) URL is passed on for the client to fetch; anything else must be a file."""
    if value.startswith(("http://", "https://")):
        return value
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"{label} file not found: {path}")
    return path


def _prepare_output(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the output directory: {exc}") from exc


if __name__ == "__main__":  # pragma: no cover - `python -m avatar_client.cli` (e2e tests)
    raise SystemExit(main())
