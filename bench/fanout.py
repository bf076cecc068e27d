"""Segment fan-out's scaling: one long job on 1, 2, 4 and 8 agents of the sleep engine.

Each agent count gets a fresh local edge (`avatar-edge serve`) and that many agent
processes running `bench.sleep_engine.SleepEngine` (a fixed sleep per upstream chunk), so
the result does not depend on this machine's CPUs. One agent runs the job whole
(`parallel=off`): the baseline. N agents run it with `parallel=N`, the edge's
SEGMENT_MAX_SECONDS set to the audio's length so the plan can give each agent one
segment. Before the measured job, N short warm-up jobs run at once, one per agent, so the
edge has seen N agents (its plan target follows the agents it has seen).

    .venv/bin/python -m bench.fanout [--audio-seconds 600] [--seconds-per-chunk 1.0]

Prints one row per agent count: wall seconds from submit to completed, speed-up over one
agent, efficiency (speed-up / N), planning and stitching seconds (from the agents' job
logs) and planning + stitching as a share of the one-agent wall time. Goals (issue 14):
speed-up >= 0.85 x N, planning + stitching <= 3 %.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench.stack import API_KEY, ROOT, free_port, stack_env, start_server, stop
from gpu_agent.settings import DEFAULT_IDLE_POLL_MAX_SECONDS
from infinitetalk.upstream import pinned

RATE = 16000
WARMUP_HOLD_SECONDS = 4.0
"""A warm-up job holds its agent longer than an idle agent's longest poll interval (3 s)."""
EFFICIENCY_GOAL = 0.85
OVERHEAD_GOAL = 0.03


def speech_with_pauses(seconds: float, rate: int = RATE, seed: int = 14) -> np.ndarray:
    """Speech-like PCM16: phrases of 2-8 s of voiced syllables, then a 0.4-1.0 s pause."""
    rng = np.random.default_rng(seed)
    total = round(seconds * rate)
    envelope = np.zeros(total, dtype=np.float32)
    position = 0.0
    while position < seconds:
        phrase_end = min(seconds, position + float(rng.uniform(2.0, 8.0)))
        while position < phrase_end:
            length = float(rng.uniform(0.12, 0.3))
            start, end = round(position * rate), min(total, round((position + length) * rate))
            envelope[start:end] = np.sin(np.linspace(0.0, np.pi, end - start)) * rng.uniform(
                0.4, 1.0
            )
            position += length + float(rng.uniform(0.02, 0.08))
        position += float(rng.uniform(0.4, 1.0))
    t = np.arange(total, dtype=np.float32) / rate
    pitch = 170.0 + 30.0 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.05 * rng.standard_normal(total)
    return np.round(0.25 * 32767 * envelope * voiced).astype("<i2")


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


@dataclass(frozen=True)
class Run:
    agents: int
    wall_seconds: float
    segments: int
    planning_seconds: float
    stitching_seconds: float


def _agent_main(argv: Sequence[str]) -> int:
    """One agent process with the sleep engine (`python -m bench.fanout agent ...`)."""
    import os

    from bench.sleep_engine import SleepEngine
    from contracts.logs import configure_logging
    from gpu_agent.cli import install_signal_handlers, run_agent
    from gpu_agent.settings import AgentSettings

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds-per-chunk", type=float, required=True)
    args = parser.parse_args(argv)
    settings = AgentSettings.from_env(os.environ)
    configure_logging(settings.log_level, secrets=settings.secrets())
    stop_event = threading.Event()
    restore = install_signal_handlers(stop_event)
    try:
        return run_agent(settings, stop_event, engine=SleepEngine(args.seconds_per_chunk))
    finally:
        restore()


class Fleet:
    """A fresh edge and `count` sleep-engine agents, each logging to its own file."""

    def __init__(
        self,
        directory: Path,
        count: int,
        seconds_per_chunk: float,
        max_s: float,
        idle_poll_seconds: float,
    ):
        self.directory = directory
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **stack_env(self.url, "INFO"),
            "SEGMENT_MIN_SECONDS": str(min(20.0, max_s / (2 * count))),
            "SEGMENT_MAX_SECONDS": str(max_s),
        }
        self.edge = start_server(
            ["edge_worker.local", "serve", "--port", str(port), "--data-dir", str(directory)],
            self.url,
            env,
            stderr=subprocess.DEVNULL,
        )
        self.logs = [directory / f"agent-{index}.log" for index in range(count)]
        self.agents = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.fanout",
                    "agent",
                    "--seconds-per-chunk",
                    str(seconds_per_chunk),
                ],
                env={
                    **env,
                    "AGENT_ID": f"bench-agent-{index}",
                    "PYTHONPATH": str(ROOT),
                    "WORK_DIR": str(directory / f"work-{index}"),
                    "IDLE_POLL_MAX_SECONDS": str(idle_poll_seconds),
                },
                stderr=log.open("wb"),
                cwd=ROOT,
            )
            for index, log in enumerate(self.logs)
        ]
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
        )

    def submit(self, image: Path, audio: Path, parallel: str) -> str:
        with image.open("rb") as img, audio.open("rb") as wav:
            response = self.client.post(
                "/generate",
                files={"image": img, "audio": wav},
                data={
                    "prompt": "bench",
                    "resolution": "480p",
                    **({} if parallel == "off" else {"parallel": parallel}),
                },
            )
        response.raise_for_status()
        job_id: str = response.json()["job_id"]
        return job_id

    def wait(self, job_id: str, poll: float = 0.05) -> dict:
        while True:
            status: dict = self.client.get(f"/status/{job_id}").json()
            if status["status"] not in ("pending", "processing"):
                if status["status"] != "completed":
                    raise RuntimeError(f"job {job_id} ended {status}")
                return status
            time.sleep(poll)

    def log_field(self, message: str, field: str) -> float:
        """The sum of `field` over the agents' log lines with this message."""
        total = 0.0
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    entry = json.loads(line)
                    if entry.get("msg") == message:
                        total += float(entry.get(field, 0.0))
        return total

    def close(self) -> None:
        self.client.close()
        stop(*self.agents, self.edge)


def measure(
    count: int,
    directory: Path,
    image: Path,
    audio: Path,
    warmup: Path,
    *,
    audio_seconds: float,
    seconds_per_chunk: float,
    idle_poll_seconds: float = DEFAULT_IDLE_POLL_MAX_SECONDS,
) -> Run:
    fleet = Fleet(directory, count, seconds_per_chunk, audio_seconds, idle_poll_seconds)
    try:
        if count > 1:
            for job in [fleet.submit(image, warmup, "off") for _ in range(count)]:
                fleet.wait(job)
        started = time.perf_counter()
        job_id = fleet.submit(image, audio, "off" if count == 1 else str(count))
        final = fleet.wait(job_id)
        wall = time.perf_counter() - started
        return Run(
            agents=count,
            wall_seconds=wall,
            segments=len(final.get("segments") or []),
            planning_seconds=fleet.log_field("segments queued", "plan_total_seconds"),
            stitching_seconds=fleet.log_field("segments stitched", "stitching_seconds"),
        )
    finally:
        fleet.close()


def table(runs: Sequence[Run]) -> str:
    base = runs[0].wall_seconds
    lines = [
        f"{'agents':>6} {'segments':>8} {'wall s':>8} {'speed-up':>9} {'efficiency':>10} "
        f"{'planning s':>10} {'stitching s':>11} {'plan+stitch':>11}"
    ]
    for run in runs:
        speedup = base / run.wall_seconds
        overhead = (run.planning_seconds + run.stitching_seconds) / base
        lines.append(
            f"{run.agents:>6} {run.segments:>8} {run.wall_seconds:>8.1f} {speedup:>8.2f}x "
            f"{speedup / run.agents:>10.2f} {run.planning_seconds:>10.2f} "
            f"{run.stitching_seconds:>11.2f} {overhead:>10.1%}"
        )
    lines.append(
        f"goals: efficiency >= {EFFICIENCY_GOAL}, planning + stitching <= {OVERHEAD_GOAL:.0%} "
        "of the one-agent wall time"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["agent"]:
        return _agent_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.fanout")
    parser.add_argument(
        "--agents", default="1,2,4,8", help="agent counts; the first is the baseline"
    )
    parser.add_argument("--audio-seconds", type=float, default=600.0)
    parser.add_argument("--seconds-per-chunk", type=float, default=1.0)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=WARMUP_HOLD_SECONDS,
        help="how long each warm-up job holds its agent",
    )
    parser.add_argument(
        "--idle-poll-seconds",
        type=float,
        default=DEFAULT_IDLE_POLL_MAX_SECONDS,
        help="the agents' IDLE_POLL_MAX_SECONDS",
    )
    parser.add_argument("--out", type=Path, help="also write the runs as JSON here")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.agents.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        audio = write_wav(directory / "speech.wav", speech_with_pauses(args.audio_seconds))
        warmup_frames = pinned.CLIP_FRAMES + (pinned.CLIP_FRAMES - pinned.MOTION_FRAMES) * max(
            0, int(np.ceil(args.warmup_seconds / args.seconds_per_chunk)) - 1
        )
        warmup = write_wav(
            directory / "warmup.wav", speech_with_pauses(warmup_frames / pinned.FPS, seed=1)
        )
        image = ROOT / "examples" / "portrait.png"
        runs = [
            measure(
                count,
                directory / f"agents-{count}",
                image,
                audio,
                warmup,
                audio_seconds=args.audio_seconds,
                seconds_per_chunk=args.seconds_per_chunk,
                idle_poll_seconds=args.idle_poll_seconds,
            )
            for count in counts
        ]
    print(
        f"{args.audio_seconds:g} s of audio, sleep engine at {args.seconds_per_chunk:g} s "
        f"per chunk ({pinned.CLIP_FRAMES} frames, {pinned.MOTION_FRAMES} reused), idle "
        f"agents polling at most every {args.idle_poll_seconds:g} s"
    )
    print(table(runs))
    if args.out:
        args.out.write_text(json.dumps([vars(run) for run in runs], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
