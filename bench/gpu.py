"""What InfiniteTalk costs on this GPU, measured through the engine the agent runs.

The engine is built exactly as the agent builds it (`create_engine("infinitetalk")` with
settings from the environment), in resident mode, so the numbers are the agent's: the
model load once, then, per speed profile (`quality`) and resolution, the wall time one job
holds the GPU for a short synthetic speech clip, as GPU-seconds per second of video, and
the peak GPU memory. The model runs in a child process, so memory is sampled with
`nvidia-smi`, which sees every process.

    python -m bench.gpu [--profiles fast,standard] [--resolutions 480p,720p] [--seconds 5]
                        [--budget-seconds 480] [--out bench-gpu.json] [--seams-dir seams]
                        [--inputs-dir inputs]

Prints one JSON document on stdout (logs go to stderr) and, with `--out`, writes it to a
file after every run, so a run cut short still leaves what was measured. Without the
upstream checkout or a weight file it exits within seconds, listing what is missing.
Exit status: 0 when every requested run was measured, 1 otherwise, 2 on bad settings.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Literal, TypeVar

from pydantic import BaseModel

from bench.inputs import InputsReport, inputs_run
from bench.seams import SeamReport, seam_run
from contracts import Capability, Quality, Resolution, Stage
from contracts.logs import configure_logging
from contracts.settings import SettingsError
from examples.make_examples import make_speech_wav
from infinitetalk.engine import (
    ClosableEngine,
    Engine,
    EngineError,
    VideoRequest,
    engine_capabilities,
)
from infinitetalk.factory import create_engine
from infinitetalk.settings import InfiniteTalkSettings
from infinitetalk.upstream import pinned
from infinitetalk.upstream.gpu_probe import ProbeReport, build_report, measure_in_subprocess
from infinitetalk.upstream.preflight import EngineStartError

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = ROOT / "examples" / "portrait.png"
PROMPT = "A friendly presenter talking to the camera"
SEED = 42
NVIDIA_SMI_GPUS = ("nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits")
NVIDIA_SMI_MEMORY = ("nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits")
NVIDIA_SMI_TIMEOUT = 10.0

Query = Callable[[], str]
E = TypeVar("E", Quality, Resolution)


class Stopped(BaseException):
    """The budget ran out or SIGTERM came: stop, free the GPU, report what was measured.

    A BaseException, so the engine's `except Exception` handlers do not swallow it.
    """


class StoppedDuringRun(Stopped):
    """Stopped in the middle of a run; carries what the run had got to."""

    def __init__(self, reason: str, run: "RunResult") -> None:
        super().__init__(reason)
        self.run = run


class GpuInfo(BaseModel):
    name: str
    memory_total_mib: int | None


class LoadResult(BaseModel):
    seconds: float
    """`create_engine` until the model is ready: what an agent waits before its first job
    (the GPU probe and preflight take seconds of it, the model load the rest)."""
    peak_vram_mib: int | None
    vram_error: str | None = None
    """Why there is no peak (no nvidia-smi, `[N/A]` under MIG)."""
    error: str | None = None


class RunResult(BaseModel):
    quality: Quality
    resolution: Resolution
    status: Literal["ok", "skipped", "failed", "interrupted"]
    steps: int | None = None
    chunks: int | None = None
    wall_seconds: float | None = None
    """From request to verified MP4: the time one job holds the GPU."""
    video_seconds: float | None = None
    gpu_seconds_per_video_second: float | None = None
    """wall_seconds x 1 GPU / video_seconds: upstream runs a single-GPU job on one GPU."""
    width: int | None = None
    height: int | None = None
    peak_vram_mib: int | None = None
    vram_error: str | None = None
    progress_percent: float | None = None
    """The engine's last reported progress (useful when the run did not finish)."""
    estimated_total_seconds: float | None = None
    """An interrupted run: elapsed time plus the engine's last ETA (measured step rate)."""
    error: str | None = None


class BenchReport(BaseModel):
    ok: bool
    started_at: str
    total_seconds: float
    gpus: list[GpuInfo]
    gpu_error: str | None
    profiles: list[Quality]
    resolutions: list[Resolution]
    audio_seconds: float
    missing: list[str]
    """Everything missing for the requested runs; the engine is not loaded if any of it
    is a start-up problem (a fast-only gap just skips the fast runs)."""
    probe: ProbeReport | None
    """`avatar-agent probe --json`: GPU, RAM, memory profile, every weight file and size."""
    load: LoadResult | None
    runs: list[RunResult]
    stopped: str | None
    """Why the bench stopped early (budget used up, SIGTERM), if it did."""
    error: str | None = None
    seams: SeamReport | None = None
    """`--seams-dir`: a parallel job's two segments and their seam's frames (bench/seams.py)."""
    inputs: InputsReport | None = None
    """`--inputs-dir`: a dubbing job and two-speaker jobs in both modes (bench/inputs.py)."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gpu",
        description="Model load time, GPU-seconds per video second and peak VRAM of "
        "InfiniteTalk through the project's engine (resident mode).",
    )
    parser.add_argument(
        "--profiles",
        type=_choices(Quality),
        default=[Quality.FAST, Quality.STANDARD],
        help="speed profiles (quality), run in this order; default: fast,standard "
        "(cheapest first, so a budget cut loses the most expensive run)",
    )
    parser.add_argument(
        "--resolutions",
        type=_choices(Resolution),
        default=[Resolution.P480, Resolution.P720],
        help="default: 480p,720p",
    )
    parser.add_argument(
        "--seconds",
        type=_bounded(1.0, 60.0),
        default=5.0,
        help="length of the synthetic speech clip (default 5: two chunks of upstream's "
        "streaming loop, the second one paying the steady-state cost)",
    )
    parser.add_argument(
        "--budget-seconds",
        type=_bounded(1.0, 86400.0),
        default=None,
        help="stop after this long, free the GPU and report what was measured (the run in "
        "progress is reported with the engine's own estimate of its total)",
    )
    parser.add_argument("--out", type=Path, help="also write the JSON document here")
    parser.add_argument(
        "--seams-dir",
        type=Path,
        help="first run a parallel job's two segments with the first profile and resolution, "
        "stitch them and save the frames on both sides of the seam here as PNGs",
    )
    parser.add_argument(
        "--inputs-dir",
        type=Path,
        help="first run a dubbing job and two-speaker jobs (sequential, simultaneous; "
        "skipped without the multi weights) with the first profile and resolution, and "
        "save their videos here",
    )
    parser.add_argument(
        "--poll-seconds",
        type=_bounded(0.05, 10.0),
        default=0.5,
        help="nvidia-smi sampling period for the peak VRAM (default 0.5)",
    )
    return parser.parse_args(argv)


def _choices(enum: type[E]) -> Callable[[str], list[E]]:
    def parse(raw: str) -> list[E]:
        values = [part.strip().lower() for part in raw.split(",") if part.strip()]
        valid = [e.value for e in enum]
        bad = [v for v in values if v not in valid]
        if bad or not values:
            raise argparse.ArgumentTypeError(
                f"{raw!r}: a comma-separated list of {', '.join(valid)}"
            )
        return [enum(v) for v in dict.fromkeys(values)]

    return parse


def _bounded(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{raw!r}: a number from {low:g} to {high:g}")
        return value

    return parse


def _nvidia_smi(command: Sequence[str]) -> str:
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT, check=True
    ).stdout


def parse_memory_used(text: str) -> list[int]:
    """MiB in use per GPU from `nvidia-smi --query-gpu=memory.used --format=csv,noheader,
    nounits`; ValueError on anything else (e.g. `[N/A]` under MIG)."""
    values = [line.strip() for line in text.splitlines() if line.strip()]
    if not values:
        raise ValueError("nvidia-smi listed no GPU")
    return [int(value) for value in values]


def parse_gpus(text: str) -> list[GpuInfo]:
    """`name, memory.total` lines (csv, no header, no units); names may contain commas."""
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, total = line.rpartition(",")
        if not name.strip():
            raise ValueError(f"unexpected nvidia-smi line {line!r}")
        total = total.strip()
        gpus.append(
            GpuInfo(name=name.strip(), memory_total_mib=int(total) if total.isdigit() else None)
        )
    return gpus


def query_gpus(
    query: Query = lambda: _nvidia_smi(NVIDIA_SMI_GPUS),
) -> tuple[list[GpuInfo], str | None]:
    """The GPUs nvidia-smi lists, or none and why."""
    try:
        return parse_gpus(query()), None
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return [], f"nvidia-smi: {exc}"


class VramPoller:
    """Peak GPU memory in use (MiB, the fullest GPU) while it runs, sampled in a thread.

    The model lives in the engine's worker process, whose torch counters are out of reach;
    nvidia-smi sees every process, CUDA contexts included.
    """

    def __init__(
        self, interval: float, query: Query = lambda: _nvidia_smi(NVIDIA_SMI_MEMORY)
    ) -> None:
        self._interval = interval
        self._query = query
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._peak: int | None = None
        self.error: str | None = None

    @property
    def peak_mib(self) -> int | None:
        with self._lock:
            return self._peak

    def fields(self) -> dict[str, int | str | None]:
        """`peak_vram_mib` and, without a peak, `vram_error`, for a result."""
        peak = self.peak_mib
        return {"peak_vram_mib": peak, "vram_error": self.error if peak is None else None}

    def sample(self) -> None:
        try:
            used = max(parse_memory_used(self._query()))
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            self.error = f"nvidia-smi: {exc}"
            return
        with self._lock:
            self._peak = used if self._peak is None else max(self._peak, used)

    def __enter__(self) -> "VramPoller":
        self.sample()
        self._thread = threading.Thread(target=self._run, name="vram-poller", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()


class _Progress:
    """The engine's last progress report, for runs that do not finish."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.percent: float | None = None
        self.estimate: float | None = None

    def __call__(self, percent: float, stage: Stage, eta: float | None) -> None:
        self.percent = percent
        if eta is not None:
            self.estimate = time.monotonic() - self.started + eta


def measure_run(
    engine: Engine,
    settings: InfiniteTalkSettings,
    quality: Quality,
    resolution: Resolution,
    audio: Path,
    audio_seconds: float,
    workdir: Path,
    poll_seconds: float,
) -> RunResult:
    """One job through the engine; an engine failure (e.g. out of memory) is a result."""
    result = RunResult(quality=quality, resolution=resolution, status="skipped")
    unavailable = engine.quality_unavailable(quality)
    if unavailable is not None:
        return result.model_copy(update={"error": unavailable})
    result = result.model_copy(
        update={
            "steps": settings.sampling(quality).steps,
            "chunks": pinned.chunk_count(pinned.embedding_frames(audio_seconds)),
        }
    )
    started = time.monotonic()
    progress = _Progress(started)
    request = VideoRequest(PORTRAIT, audio, PROMPT, resolution, seed=SEED, quality=quality)
    with VramPoller(poll_seconds) as vram:
        try:
            video = engine.generate(request, workdir, progress, lambda: False)
        except EngineError as exc:
            return result.model_copy(
                update={
                    "status": "failed",
                    "wall_seconds": round(time.monotonic() - started, 2),
                    **vram.fields(),
                    "progress_percent": progress.percent,
                    "error": f"{exc.code}: {exc.message}",
                }
            )
        except Stopped as stop:
            vram.sample()
            estimate = progress.estimate
            interrupted = result.model_copy(
                update={
                    "status": "interrupted",
                    "wall_seconds": round(time.monotonic() - started, 2),
                    **vram.fields(),
                    "progress_percent": progress.percent,
                    "estimated_total_seconds": round(estimate, 1) if estimate else None,
                }
            )
            raise StoppedDuringRun(str(stop), interrupted) from None
    wall = time.monotonic() - started
    return result.model_copy(
        update={
            "status": "ok",
            "wall_seconds": round(wall, 2),
            "video_seconds": round(video.duration_seconds, 3),
            "gpu_seconds_per_video_second": round(wall / video.duration_seconds, 2),
            "width": video.width,
            "height": video.height,
            **vram.fields(),
            "progress_percent": 100.0,
        }
    )


class Bench:
    """One bench: preflight, model load, the runs; `report()` at any point is valid JSON."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.started = time.monotonic()
        self.gpus: list[GpuInfo] = []
        self.gpu_error: str | None = None
        self.missing: list[str] = []
        self.probe: ProbeReport | None = None
        self.load: LoadResult | None = None
        self.runs: list[RunResult] = []
        self.stopped: str | None = None
        self.error: str | None = None
        self.seams: SeamReport | None = None
        self.inputs: InputsReport | None = None

    def run(self, env: Mapping[str, str]) -> int:
        """0: every requested run measured; 1: something missing, failed or cut short;
        2: bad settings."""
        try:
            settings = InfiniteTalkSettings.from_env({**env, "INFINITETALK_MODE": "resident"})
        except SettingsError as exc:
            self.error = str(exc)
            return 2
        try:
            self._run(settings)
        except StoppedDuringRun as stop:
            self.runs.append(stop.run)
            self.stopped = str(stop)
        except Stopped as stop:
            self.stopped = str(stop)
        return 0 if self.ok else 1

    @property
    def ok(self) -> bool:
        requested = len(self.args.profiles) * len(self.args.resolutions)
        return (
            self.error is None
            and not self.missing
            and self.stopped is None
            and self.load is not None
            and self.load.error is None
            and len(self.runs) == requested
            and all(run.status == "ok" for run in self.runs)
            and (self.args.seams_dir is None or (self.seams is not None and self.seams.ok))
            and (self.args.inputs_dir is None or (self.inputs is not None and self.inputs.ok))
        )

    def report(self) -> BenchReport:
        return BenchReport(
            ok=self.ok,
            started_at=self.started_at,
            total_seconds=round(time.monotonic() - self.started, 1),
            gpus=self.gpus,
            gpu_error=self.gpu_error,
            profiles=self.args.profiles,
            resolutions=self.args.resolutions,
            audio_seconds=self.args.seconds,
            missing=self.missing,
            probe=self.probe,
            load=self.load,
            runs=self.runs,
            stopped=self.stopped,
            error=self.error,
            seams=self.seams,
            inputs=self.inputs,
        )

    def save(self) -> None:
        """Write the report so far to `--out` (atomically: a reader never sees half)."""
        out: Path | None = self.args.out
        if out is None:
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        partial.write_text(self.report().model_dump_json(indent=2) + "\n")
        partial.replace(out)

    def _run(self, settings: InfiniteTalkSettings) -> None:
        self.gpus, self.gpu_error = query_gpus()
        self.probe = build_report(settings, measure_in_subprocess())
        self.missing = list(self.probe.problems)
        if Quality.FAST in self.args.profiles and self.probe.fast_unavailable is not None:
            self.missing.append(f"quality=fast: {self.probe.fast_unavailable}")
        if self.probe.problems:
            return
        with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
            audio = make_speech_wav(Path(tmp) / "speech.wav", seconds=self.args.seconds)
            engine = self._load(settings)
            if engine is None:
                return
            try:
                self.save()
                if self.args.seams_dir is not None:
                    self.seams = seam_run(
                        engine,
                        self.args.profiles[0],
                        self.args.resolutions[0],
                        PORTRAIT,
                        PROMPT,
                        SEED,
                        Path(tmp) / "seams",
                        self.args.seams_dir,
                    )
                    self.save()
                if self.args.inputs_dir is not None:
                    self.inputs = inputs_run(
                        engine,
                        self.args.profiles[0],
                        self.args.resolutions[0],
                        PROMPT,
                        SEED,
                        PORTRAIT,
                        self._two_speakers_unavailable(engine),
                        Path(tmp) / "inputs",
                        self.args.inputs_dir,
                    )
                    self.save()
                for quality in self.args.profiles:
                    for resolution in self.args.resolutions:
                        workdir = Path(tmp) / f"{quality.value}-{resolution.value}"
                        workdir.mkdir()
                        run = measure_run(
                            engine,
                            settings,
                            quality,
                            resolution,
                            audio,
                            self.args.seconds,
                            workdir,
                            self.args.poll_seconds,
                        )
                        self.runs.append(run)
                        self.save()
            finally:
                _hold_stops()  # closing frees the GPU: a second signal must not cut it
                if isinstance(engine, ClosableEngine):
                    engine.close()

    def _two_speakers_unavailable(self, engine: Engine) -> str | None:
        """None when the engine takes two-speaker jobs; else why not (the probe's words)."""
        if Capability.TWO_SPEAKERS in engine_capabilities(engine):
            return None
        why = self.probe.two_speakers_unavailable if self.probe is not None else None
        return why or "the engine does not advertise the two_speakers capability"

    def _load(self, settings: InfiniteTalkSettings) -> Engine | None:
        vram = VramPoller(self.args.poll_seconds)
        started = time.monotonic()
        engine: Engine | None = None
        error: str | None = "stopped while loading"
        try:
            with vram:
                try:
                    engine = create_engine("infinitetalk", infinitetalk=settings)
                    error = None
                except EngineStartError as exc:
                    error = "; ".join(exc.problems)
        finally:
            self.load = LoadResult(
                seconds=round(time.monotonic() - started, 1),
                **vram.fields(),
                error=error,
            )
        return engine


def _stop(reason: str) -> Callable[[int, FrameType | None], None]:
    """A signal handler that unwinds the bench (see `Stopped`)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        raise Stopped(reason)

    return handle


def _hold_stops() -> None:
    """Disarm the budget and ignore SIGTERM: what follows frees the GPU and writes the report."""
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main(argv: Sequence[str] | None = None) -> int:
    """Logs, upstream's prints and every child's stdout go to stderr; the JSON to stdout."""
    args = parse_args(argv)
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    sys.stdout.flush()
    report_to = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    signal.signal(signal.SIGTERM, _stop("SIGTERM"))
    if args.budget_seconds is not None:
        budget = args.budget_seconds
        signal.signal(signal.SIGALRM, _stop(f"budget of {budget:g} s used up"))
        signal.setitimer(signal.ITIMER_REAL, budget)
    bench = Bench(args)
    try:
        status = bench.run(os.environ)
    finally:
        _hold_stops()
    bench.save()
    print(bench.report().model_dump_json(indent=2), file=report_to, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
