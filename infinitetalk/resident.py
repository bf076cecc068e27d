"""Resident mode: the model is loaded once per agent, in a worker process the agent owns.

Loading Wan2.1-14B + InfiniteTalk takes minutes; resident mode pays that once at agent
start and keeps the pipeline warm for every job (subprocess mode pays it per job). The
model lives in a spawned child (`resident_child`), not in the agent, after cog's worker:
a CUDA crash, an out-of-memory kill or a hung kernel takes down the child, never the
agent. The agent's side (`ModelWorker`) keeps the child's state
(STARTING -> READY -> BUSY -> READY ... or DEFUNCT), restarts a dead or broken child and
counts the reloads, and turns a cancel or a time limit into a signal, then a kill if the
child does not stop within the grace period.
"""

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from multiprocessing.context import SpawnContext
from pathlib import Path

from contracts import FailureCode, Quality
from infinitetalk import failures, upstream
from infinitetalk.engine import (
    CancelCheck,
    CancelledError,
    EngineError,
    ProgressCallback,
    VideoRequest,
    VideoResult,
    require_quality,
)
from infinitetalk.postprocess import finalize
from infinitetalk.prepare import plan_job
from infinitetalk.profiles import ResolvedProfile
from infinitetalk.progress import JobProgress
from infinitetalk.resident_child import CANCEL_SIGNAL, child_main
from infinitetalk.resident_protocol import (
    Cancelled,
    Done,
    Encoding,
    Failed,
    JobEnd,
    JobEvent,
    LoadFailed,
    Ready,
    RunJob,
    Shutdown,
    Step,
    WorkerConfig,
)
from infinitetalk.settings import InfiniteTalkSettings

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
STOP_SECONDS = 10.0
"""How long a Shutdown may take before the worker is killed."""
OUTPUT_NAME = "infinitetalk.mp4"


class WorkerState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    DEFUNCT = "defunct"


class Stop(StrEnum):
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class WorkerLoadError(RuntimeError):
    def __init__(self, message: str, log_tail: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.log_tail = log_tail


class WorkerDied(RuntimeError):
    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"the model worker died (exit code {exitcode})")
        self.exitcode = exitcode


@dataclass(frozen=True)
class JobOutcome:
    end: JobEnd | None
    """None when the worker had to be killed."""
    stopped: Stop | None
    """Set when the agent stopped the job (cancel or time limit)."""


def worker_config(
    settings: InfiniteTalkSettings, profile: ResolvedProfile, *, fast: bool
) -> WorkerConfig:
    """What the worker loads. With `fast` it also keeps the fast LoRA at hand: the pipeline
    loads without it, and the LoRA is merged in only while fast jobs run."""
    quant = profile.quantization.value if profile.quantized else None
    return WorkerConfig(
        upstream_dir=settings.upstream_dir,
        ckpt_dir=settings.wan_dir,
        infinitetalk_weights=settings.infinitetalk_weights,
        wav2vec_dir=settings.wav2vec_dir,
        quantization=quant,
        quant_dir=settings.quant_weights(profile.quantization) if profile.quantized else None,
        fast_lora=settings.fast_lora_path if fast else None,
        fast_lora_scale=settings.fast_lora_scale,
        num_persistent_param_in_dit=profile.num_persistent_param_in_dit,
        offload_model=profile.offload_model,
        color_correction_strength=settings.color_correction_strength,
        teacache=settings.teacache,
        teacache_threshold=settings.teacache_threshold,
        log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        child_env=settings.child_env,
    )


class ModelWorker:
    """The agent's handle on the model worker process."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        load_timeout: float,
        cancel_grace: float,
        target: Callable[..., None] = child_main,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._load_timeout = load_timeout
        self._cancel_grace = cancel_grace
        self._target = target
        self._clock = clock
        self._context: SpawnContext = multiprocessing.get_context("spawn")
        self._cancel_target = self._context.Value("q", 0, lock=False)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._started_at = 0.0
        self._jobs = 0
        self.starts = 0
        self.state = WorkerState.STOPPED

    @property
    def reloads(self) -> int:
        """Model loads after the first: each one is a worker that died or had to be killed."""
        return max(0, self.starts - 1)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Spawn a worker; it loads the model on its own (`wait_ready` waits for that)."""
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=self._target,
            args=(child_end, self._config, self._cancel_target),
            name="infinitetalk-model",
            daemon=True,
        )
        process.start()
        child_end.close()
        self._process, self._conn = process, parent_end
        self._started_at = self._clock()
        self.starts += 1
        self.state = WorkerState.STARTING
        log.info("model worker started", extra={"pid": process.pid, "reloads": self.reloads})

    def restart(self) -> None:
        self.kill()
        self.start()

    def wait_ready(self, cancelled: CancelCheck = lambda: False) -> float:
        """Block until the model is loaded; returns the load time in seconds."""
        while True:
            try:
                message = self._receive()
            except WorkerDied as died:
                self.state = WorkerState.DEFUNCT
                raise WorkerLoadError(f"{died} while loading the model") from died
            if isinstance(message, Ready):
                self.state = WorkerState.READY
                log.info("model ready", extra={"load_seconds": round(message.load_seconds, 1)})
                return message.load_seconds
            if isinstance(message, LoadFailed):
                self.kill()
                raise WorkerLoadError(message.message, message.log_tail)
            if cancelled():
                raise CancelledError()
            if self._clock() - self._started_at > self._load_timeout:
                self.kill()
                raise WorkerLoadError(f"the model did not load within {self._load_timeout:.0f} s")

    def run(
        self,
        job: RunJob,
        on_event: Callable[[JobEvent], None],
        cancelled: CancelCheck,
        deadline: float,
    ) -> JobOutcome:
        """Run one job to its end; cancel or time limit: signal, then kill after the grace.

        Raises WorkerDied when the worker exits mid-job.
        """
        assert self._conn is not None and self.state is WorkerState.READY
        self._jobs += 1
        job = dataclasses.replace(job, number=self._jobs)
        self.state = WorkerState.BUSY
        self._conn.send(job)
        stopped: Stop | None = None
        stop_sent_at = 0.0
        while True:
            try:
                message = self._receive()
            except WorkerDied:
                self.state = WorkerState.DEFUNCT
                raise
            if isinstance(message, Step | Encoding):
                on_event(message)
            elif isinstance(message, Done | Failed | Cancelled):
                fatal = isinstance(message, Failed) and message.fatal
                self.state = WorkerState.DEFUNCT if fatal else WorkerState.READY
                return JobOutcome(message, stopped)
            if stopped is None:
                if cancelled():
                    stopped = Stop.CANCELLED
                elif self._clock() > deadline:
                    stopped = Stop.TIMED_OUT
                if stopped is not None:
                    stop_sent_at = self._clock()
                    self._signal_cancel(job.number)
            elif self._clock() - stop_sent_at > self._cancel_grace:
                log.warning("model worker did not stop in time, killing it")
                self.kill()
                return JobOutcome(None, stopped)

    def kill(self) -> None:
        """SIGKILL the worker's process group (it leads its own session) and reap it."""
        process = self._process
        if process is not None and process.pid is not None and process.is_alive():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # not yet in its own session
                process.kill()
            process.join()
        self._close_pipe()
        self.state = WorkerState.DEFUNCT

    def stop(self) -> None:
        """Ask an idle worker to exit, kill a busy or stubborn one; the GPU memory is freed."""
        process = self._process
        if self.state is WorkerState.READY and process is not None and self._conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(Shutdown())
            process.join(STOP_SECONDS)
        self.kill()
        self.state = WorkerState.STOPPED

    def _signal_cancel(self, number: int) -> None:
        self._cancel_target.value = number
        if self._process is not None and self._process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, CANCEL_SIGNAL)

    def _receive(self) -> object | None:
        """The worker's next message, None if none came within POLL_SECONDS."""
        assert self._conn is not None and self._process is not None
        try:
            if self._conn.poll(POLL_SECONDS):
                return self._conn.recv()
            if self._process.is_alive():
                return None
        except (EOFError, OSError):
            pass
        self._process.join(5)
        raise WorkerDied(self._process.exitcode)

    def _close_pipe(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class ResidentEngine:
    """The `infinitetalk` engine in resident mode."""

    name = "infinitetalk"

    def __init__(
        self,
        settings: InfiniteTalkSettings,
        worker: ModelWorker,
        *,
        fast_unavailable: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._worker = worker
        self._fast_unavailable = fast_unavailable
        self._clock = clock

    @property
    def worker(self) -> ModelWorker:
        return self._worker

    def start(self) -> None:
        """Start the worker and wait for the model: the agent pulls no job before that."""
        log.info("loading the InfiniteTalk model (minutes, once per agent)")
        self._worker.start()
        try:
            self._worker.wait_ready()
        except WorkerLoadError as exc:
            _log_tail("model load failed", exc.log_tail)
            raise

    def close(self) -> None:
        self._worker.stop()

    def quality_unavailable(self, quality: Quality) -> str | None:
        return self._fast_unavailable if quality is Quality.FAST else None

    def generate(
        self,
        request: VideoRequest,
        workdir: Path,
        on_progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> VideoResult:
        require_quality(self, request.quality)
        settings = self._settings
        workdir = workdir.resolve()
        plan = plan_job(request, workdir / "inputs", settings)
        sampling = plan.sampling
        progress = JobProgress(
            on_progress, chunks=plan.chunks, steps=sampling.steps, frames=plan.frames
        )
        progress.preparing()
        self._ensure_ready(cancelled)
        run_dir = workdir / "upstream"
        run_dir.mkdir(parents=True)
        shift = sampling.shift or upstream.DEFAULT_SAMPLE_SHIFT[plan.resolution]
        job = RunJob(
            image_path=plan.image_path,
            audio_path=plan.audio_path,
            prompt=plan.prompt,
            size=upstream.SIZE_ARGUMENT[plan.resolution],
            sample_shift=shift,
            sample_steps=sampling.steps,
            text_guide_scale=sampling.text_guide_scale,
            audio_guide_scale=sampling.audio_guide_scale,
            fast_lora=bool(sampling.lora),
            seed=plan.seed,
            max_frame_num=plan.max_frame_num,
            workdir=run_dir,
            output_path=run_dir / "frames.mp4",
        )
        log.info(
            "job sent to the model worker",
            extra={
                "seed": plan.seed,
                "quality": request.quality.value,
                "steps": sampling.steps,
                "chunks": plan.chunks,
                "frames": plan.frames,
            },
        )

        def on_event(event: JobEvent) -> None:
            if isinstance(event, Step):
                progress.step(event.chunk, event.done)
            else:
                progress.encoding(event.done, event.total)

        try:
            outcome = self._worker.run(
                job, on_event, cancelled, self._clock() + plan.timeout_seconds
            )
        except WorkerDied as died:
            self._restart(str(died))
            raise failures.generation_failed(
                f"the model worker died (exit code {died.exitcode}); "
                "the pod may have run out of host memory"
            ) from died
        if outcome.end is None:
            self._restart("it did not stop after a cancel or time limit")
        elif isinstance(outcome.end, Failed) and outcome.end.fatal:
            self._restart("its CUDA state is broken")
        if outcome.stopped is Stop.CANCELLED:
            raise CancelledError()
        if outcome.stopped is Stop.TIMED_OUT:
            raise failures.timed_out(plan.timeout_seconds, plan.audio_seconds)
        end = outcome.end
        if isinstance(end, Failed):
            _log_tail("upstream failed", end.log_tail, fatal=end.fatal)
            retryable = end.code != FailureCode.GPU_OUT_OF_MEMORY.value
            raise EngineError(end.code, end.message, retryable=retryable)
        if not isinstance(end, Done):
            raise CancelledError()
        output = workdir / OUTPUT_NAME
        info = finalize(end.path, plan, output)
        progress.finished()
        return VideoResult(
            path=output,
            duration_seconds=info.duration_seconds,
            width=info.width,
            height=info.height,
            engine=self.name,
        )

    def _ensure_ready(self, cancelled: CancelCheck) -> None:
        """A worker that died or was killed is back loading; wait for it (or start it)."""
        if self._worker.state is WorkerState.DEFUNCT:
            self._restart("its last load failed")
        if self._worker.state is WorkerState.STARTING:
            try:
                self._worker.wait_ready(cancelled)
            except WorkerLoadError as exc:
                _log_tail("model reload failed", exc.log_tail)
                raise failures.generation_failed("the model could not be loaded") from exc

    def _restart(self, reason: str) -> None:
        self._worker.restart()
        log.warning(
            "model worker restarted", extra={"reason": reason, "reloads": self._worker.reloads}
        )


def _log_tail(message: str, tail: tuple[str, ...], **extra: object) -> None:
    log.warning(message, extra={"log_tail": "\n".join(tail), **extra})
