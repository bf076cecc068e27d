"""Subprocess mode: each job runs upstream's `generate_infinitetalk.py` as its own process.

Simple and isolated, but every job pays the model load (minutes); resident mode does not.
The command is upstream's README run with what a service needs on top:
`--mode streaming` (the default `clip` makes one 3.24 s chunk), `--max_frame_num` from the
audio (the default 1000 frames cuts anything over 40 s), `--save_file` as a stem (upstream
appends `.mp4`), and a fresh working directory as the process's cwd (upstream writes
`save_audio/<stem>/` and temporary files by relative name). The process leads its own
process group, so cancelling or timing out kills upstream and every ffmpeg it started.
"""

import codecs
import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from infinitetalk.engine import CancelCheck
from infinitetalk.settings import InfiniteTalkSettings
from infinitetalk.upstream import failures, pinned
from infinitetalk.upstream.engine import Stop, UpstreamRun
from infinitetalk.upstream.logtail import LogTail
from infinitetalk.upstream.prepare import JobPlan
from infinitetalk.upstream.profiles import ResolvedProfile
from infinitetalk.upstream.progress import TqdmParser

log = logging.getLogger(__name__)
upstream_log = logging.getLogger("infinitetalk.upstream")

SAVE_STEM = "infinitetalk"
POLL_SECONDS = 0.2
SITE_DIR = Path(__file__).resolve().parent / "site"
"""Holds the `sitecustomize` that lets upstream import on Python 3.11+ (`compat`)."""
TERM_GRACE_SECONDS = 3.0
"""After SIGTERM, how long the process group gets before SIGKILL."""


def input_json(plan: JobPlan) -> dict[str, object]:
    """Upstream's `--input_json`: one person talking over a portrait or a video to dub
    (examples/single_example_image.json, single_example_video.json), or two with their
    boxes (multi_example_image.json, plus `bbox`, which upstream reads when present)."""
    speakers = plan.speakers
    if speakers is None:
        return {
            "prompt": plan.prompt,
            "cond_video": str(plan.cond_path),
            "cond_audio": {"person1": str(plan.audio_path)},
        }
    return {
        "prompt": plan.prompt,
        "cond_video": str(plan.cond_path),
        "audio_type": speakers.audio_type,
        "cond_audio": {"person1": str(speakers.person1), "person2": str(speakers.person2)},
        "bbox": speakers.bbox,
    }


def build_command(
    settings: InfiniteTalkSettings,
    profile: ResolvedProfile,
    plan: JobPlan,
    run_dir: Path,
) -> list[str]:
    """The exact argv, flag names and spellings as `_parse_args` at the pinned commit;
    steps, guidance and LoRA follow the job's quality (`plan.sampling`)."""
    argv = [
        str(settings.python),
        str(settings.upstream_dir / pinned.SCRIPT),
        "--task",
        pinned.TASK,
        "--size",
        pinned.SIZE_ARGUMENT[plan.resolution],
        "--ckpt_dir",
        str(settings.wan_dir),
        "--infinitetalk_dir",
        str(settings.multi_weights if plan.speakers else settings.infinitetalk_weights),
        "--wav2vec_dir",
        str(settings.wav2vec_dir),
        "--input_json",
        str(run_dir / "input.json"),
        "--save_file",
        str(run_dir / SAVE_STEM),
        "--mode",
        "streaming",
        "--frame_num",
        str(pinned.CLIP_FRAMES),
        "--max_frame_num",
        str(plan.max_frame_num),
        "--motion_frame",
        str(pinned.MOTION_FRAMES),
        "--sample_steps",
        str(plan.sampling.steps),
        "--sample_text_guide_scale",
        f"{plan.sampling.text_guide_scale:g}",
        "--sample_audio_guide_scale",
        f"{plan.sampling.audio_guide_scale:g}",
        "--color_correction_strength",
        f"{settings.color_correction_strength:g}",
        "--base_seed",
        str(plan.seed),
        "--offload_model",
        str(profile.offload_model),
    ]
    if plan.sampling.shift is not None:
        argv += ["--sample_shift", f"{plan.sampling.shift:g}"]
    if profile.num_persistent_param_in_dit is not None:
        argv += ["--num_persistent_param_in_dit", str(profile.num_persistent_param_in_dit)]
    if profile.quantized:
        quant_dir = settings.quant_weights(profile.quantization)
        argv += ["--quant", profile.quantization.value, "--quant_dir", str(quant_dir)]
    if plan.sampling.lora:
        argv += ["--lora_dir", *(str(path) for path, _ in plan.sampling.lora)]
        argv += ["--lora_scale", *(f"{scale:g}" for _, scale in plan.sampling.lora)]
    if settings.teacache:
        argv += ["--use_teacache", "--teacache_thresh", f"{settings.teacache_threshold:g}"]
    return argv


def upstream_env(base: dict[str, str]) -> dict[str, str]:
    """Upstream's environment: unbuffered output, and the 3.11 shim first on PYTHONPATH."""
    path = os.pathsep.join(p for p in (str(SITE_DIR), base.get("PYTHONPATH")) if p)
    return {**base, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}


@dataclass(frozen=True)
class ProcessOutcome:
    stopped: Stop | None
    """Set when the agent stopped the process (cancel or time limit)."""
    returncode: int | None
    tail: list[str]


class UpstreamProcess:
    """Runs one command in its own process group, streaming its output as it comes."""

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str] | None,
        on_stderr: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._argv = argv
        self._cwd = cwd
        self._env = env
        self._on_stderr = on_stderr
        self._clock = clock
        self._tail = LogTail(upstream_log, logging.INFO)
        self._tail_lock = threading.Lock()

    def run(self, deadline: float, cancelled: CancelCheck) -> ProcessOutcome:
        process = subprocess.Popen(
            self._argv,
            cwd=self._cwd,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdout is not None and process.stderr is not None
        readers = [
            threading.Thread(target=self._read, args=(process.stdout, None), daemon=True),
            threading.Thread(
                target=self._read, args=(process.stderr, self._on_stderr), daemon=True
            ),
        ]
        for reader in readers:
            reader.start()
        stopped: Stop | None = None
        while True:
            try:
                process.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancelled():
                stopped = Stop.CANCELLED
            elif self._clock() > deadline:
                stopped = Stop.TIMED_OUT
            else:
                continue
            self._kill_group(process)
            break
        for reader in readers:
            reader.join(timeout=5)
        with self._tail_lock:
            tail = self._tail.lines()
        return ProcessOutcome(stopped, process.returncode, tail)

    def _read(self, stream: IO[bytes], on_text: Callable[[str], None] | None) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with stream:
            while chunk := os.read(stream.fileno(), 65536):
                text = decoder.decode(chunk)
                with self._tail_lock:
                    self._tail.feed(text)
                if on_text is not None:
                    on_text(text)

    def _kill_group(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after the grace period."""
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=TERM_GRACE_SECONDS)
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class SubprocessBackend:
    """Runs each job as its own upstream process, which loads the model every time."""

    def __init__(self, settings: InfiniteTalkSettings, profile: ResolvedProfile) -> None:
        self._settings = settings
        self._profile = profile

    def ready(self, cancelled: CancelCheck) -> None:
        """Always ready: nothing is loaded between jobs."""

    def close(self) -> None:
        """Nothing outlives a job."""

    def run(self, run: UpstreamRun) -> Path | Stop:
        plan, run_dir = run.plan, run.run_dir
        (run_dir / "input.json").write_text(json.dumps(input_json(plan)))
        argv = build_command(self._settings, self._profile, plan, run_dir)
        env = upstream_env(self._settings.child_env or dict(os.environ))
        log.info("upstream process started", extra={"argv": argv})
        process = UpstreamProcess(
            argv, cwd=run_dir, env=env, on_stderr=TqdmParser(run.progress, plan.sampling.steps).feed
        )
        outcome = process.run(run.deadline, run.cancelled)
        if outcome.stopped is Stop.TIMED_OUT:
            _log_tail("upstream timed out", outcome)
        if outcome.stopped is not None:
            return outcome.stopped
        if outcome.returncode != 0:
            _log_tail("upstream failed", outcome)
            raise _exit_failure(outcome)
        raw = run_dir / f"{SAVE_STEM}.mp4"
        if not raw.is_file():
            _log_tail("upstream wrote no video", outcome)
            raise failures.generation_failed("InfiniteTalk exited without writing a video")
        return raw


def _exit_failure(outcome: ProcessOutcome) -> Exception:
    code = outcome.returncode or 0
    if failures.mentions_oom(outcome.tail):
        return failures.out_of_memory()
    if code < 0:
        name = signal.Signals(-code).name
        return failures.generation_failed(
            f"InfiniteTalk was killed by {name} (the pod may have run out of host memory)"
        )
    return failures.generation_failed(f"InfiniteTalk failed (exit status {code})")


def _log_tail(message: str, outcome: ProcessOutcome) -> None:
    log.warning(
        message,
        extra={"returncode": outcome.returncode, "log_tail": "\n".join(outcome.tail)},
    )
