"""`avatar-agent run [--engine preview|infinitetalk]`: one agent, configured by the variables
that README.md (Configuration) lists.

`avatar-agent probe [--json]` reports what an InfiniteTalk agent on this machine would use.

This is the only module that reads `os.environ` and installs signal handlers; the
rest of the package receives settings and a stop event, so `avatar dev` can run an
agent in a thread with the same wiring (`run_agent`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

import httpx

from contracts.logs import configure_logging
from contracts.settings import SettingsError
from gpu_agent.agent import Agent, IdleHeartbeat, idle_backoff
from gpu_agent.audio_track import AudioTracks
from gpu_agent.claimed_job import ClaimedJobFactory
from gpu_agent.delivery import MessageDelivery
from gpu_agent.edge_client import EdgeClient
from gpu_agent.pipeline import Pipeline, PipelineLimits
from gpu_agent.queue_client import CloudflareQueueClient
from gpu_agent.settings import ENGINES, AgentSettings
from infinitetalk.engine import ClosableEngine, Engine, engine_capabilities
from infinitetalk.settings import InfiniteTalkSettings

log = logging.getLogger("gpu_agent.cli")  # not __main__ under `python -m`

USER_AGENT = "avatar-agent/0.1"
API_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
TRANSFER_TIMEOUT = httpx.Timeout(120.0, connect=10.0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatar-agent", description="Pull-based GPU agent for the talking-avatar API."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="pull and run jobs until SIGINT/SIGTERM")
    run.add_argument("--engine", choices=ENGINES, help="overrides ENGINE")
    probe = commands.add_parser(
        "probe",
        help="report GPU, RAM, weights, the InfiniteTalk memory profile and quality=fast",
    )
    probe.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `avatar-agent` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "probe":
        from infinitetalk.upstream.gpu_probe import probe_main  # may import torch

        return probe_main(os.environ, as_json=args.json, out=sys.stdout)
    if args.command != "run":
        parser.print_help(sys.stderr)
        return 2
    try:
        settings = AgentSettings.from_env(os.environ)
        if args.engine:
            settings = settings.model_copy(update={"engine": args.engine})
        if settings.engine == "infinitetalk":
            engine_settings = InfiniteTalkSettings.from_env(os.environ)
            settings = settings.model_copy(update={"infinitetalk": engine_settings})
    except SettingsError as exc:
        print(f"avatar-agent: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, secrets=settings.secrets())
    stop = threading.Event()
    restore = install_signal_handlers(stop)
    try:
        return run_agent(settings, stop)
    except KeyboardInterrupt:
        log.warning("aborted by a second signal")
        return 130
    finally:
        restore()


def run_agent(
    settings: AgentSettings,
    stop: threading.Event,
    *,
    engine: Engine | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Build the engine and the clients, then pull until `stop`; returns the exit status."""
    own_engine = engine is None
    if engine is None:
        try:
            engine = load_engine(settings)
        except Exception as exc:
            log.exception("engine could not be started", extra={"engine": settings.engine})
            print(
                f"avatar-agent: engine {settings.engine!r} could not start: {exc}", file=sys.stderr
            )
            return 1
    headers = {"User-Agent": USER_AGENT}
    with (
        httpx.Client(timeout=API_TIMEOUT, headers=headers, transport=transport) as queue_http,
        httpx.Client(timeout=API_TIMEOUT, headers=headers, transport=transport) as edge_http,
        httpx.Client(
            timeout=TRANSFER_TIMEOUT, headers=headers, transport=transport, follow_redirects=True
        ) as transfer_http,
    ):
        tracks = AudioTracks(transfer_http)
        agent = build_agent(
            settings,
            engine,
            queue_http=queue_http,
            edge_http=edge_http,
            transfer_http=transfer_http,
            tracks=tracks,
        )
        log.info(
            "agent configured",
            extra={
                "agent_id": settings.agent_id,
                "engine": engine.name,
                "edge_url": settings.edge_url,
                "queue": settings.cf_queue_id,
            },
        )
        try:
            agent.run_forever(stop)
            tracks.wait(settings.shutdown_grace_seconds)  # a planner's track upload, if any
        finally:
            if own_engine and isinstance(engine, ClosableEngine):
                engine.close()  # a resident model worker gives its GPU memory back
    return 0


def build_agent(
    settings: AgentSettings,
    engine: Engine,
    *,
    queue_http: httpx.Client,
    edge_http: httpx.Client,
    transfer_http: httpx.Client,
    tracks: AudioTracks | None = None,
) -> Agent:
    """Wire settings, engine and HTTP clients into an `Agent` (no I/O happens here).

    Signed storage URLs get their own client with no credentials: an Authorization
    header would also break S3/R2 presigned requests.
    """
    queue = CloudflareQueueClient(
        queue_http,
        api_base=settings.cf_api_base,
        account_id=settings.cf_account_id,
        queue_id=settings.cf_queue_id,
        api_token=settings.cf_api_token.get_secret_value(),
    )
    edge = EdgeClient(
        edge_http, base_url=settings.edge_url, token=settings.agent_token.get_secret_value()
    )
    pipeline = Pipeline(
        edge=edge,
        transfers=transfer_http,
        engine=engine,
        limits=PipelineLimits(
            max_image_bytes=settings.max_image_bytes,
            max_audio_bytes=settings.max_audio_bytes,
            max_image_pixels=settings.max_image_pixels,
            max_audio_seconds=settings.max_audio_seconds,
            max_video_bytes=settings.max_video_bytes,
            max_video_seconds=settings.max_video_seconds,
        ),
        tracks=tracks,
    )
    delivery = MessageDelivery(
        queue=queue,
        edge=edge,
        jobs=ClaimedJobFactory(edge=edge, pipeline=pipeline, work_dir=settings.work_dir),
        agent_id=settings.agent_id,
        claim_retry_delay_seconds=settings.claim_retry_delay_seconds,
        capabilities=engine_capabilities(engine),
    )
    return Agent(
        queue,
        delivery,
        visibility_timeout_ms=settings.visibility_timeout_seconds * 1000,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        heartbeat=IdleHeartbeat(
            edge,
            agent_id=settings.agent_id,
            pod_id=settings.runpod_pod_id,
            interval_seconds=settings.idle_heartbeat_seconds,
        ),
        idle_backoff=idle_backoff(settings.idle_poll_max_seconds),
    )


def load_engine(settings: AgentSettings) -> Engine:
    """Import the engine factory only when an agent actually starts (it may load torch)."""
    from infinitetalk.factory import create_engine

    options = {"infinitetalk": settings.infinitetalk} if settings.infinitetalk else {}
    return create_engine(settings.engine, **options)


def install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set `stop`; a second one aborts at once (`main` exits 130).

    Pulling stops at once; the job in progress gets SHUTDOWN_GRACE_SECONDS to finish
    before the agent hands it back to the edge (`Agent.run_forever`).

    Returns a function that restores the previous handlers.
    """
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info(
            "stopping: no more jobs, the current one gets its grace period; signal again to abort",
            extra={"signal": signal.Signals(signum).name},
        )
        stop.set()

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


if __name__ == "__main__":  # pragma: no cover - `python -m gpu_agent.cli run` (e2e tests)
    sys.exit(main())
