"""Resident mode end to end: a real spawned model worker running the stand-in checkout.

One worker serves the module's jobs, so each test also shows that the model stays loaded
(same worker pid, no reload) unless the failure demands a new one.
"""

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import Quality, Resolution, Stage
from infinitetalk.engine import (
    CancelledError,
    EngineError,
    QualityUnavailableError,
    VideoRequest,
)
from infinitetalk.factory import start_infinitetalk
from infinitetalk.media.probe import probe_video
from infinitetalk.settings import InfiniteTalkSettings
from infinitetalk.upstream.engine import UpstreamEngine
from infinitetalk.upstream.preflight import EngineStartError
from infinitetalk.upstream.resident_mode import ResidentBackend
from infinitetalk.upstream.worker import WorkerState
from tests.fixtures.standin import STANDIN_DIR, agent_env

Report = tuple[float, Stage, float | None]


def settings_for(models: Path, **extra: str) -> InfiniteTalkSettings:
    env = {
        **agent_env(models, "resident", INFINITETALK_CANCEL_GRACE_SECONDS="1", **extra),
        "PATH": os.environ["PATH"],
    }
    return InfiniteTalkSettings.from_env(env)


@pytest.fixture(scope="module")
def engine(standin_models: Path) -> Iterator[UpstreamEngine[ResidentBackend]]:
    started = start_infinitetalk(settings_for(standin_models, INFINITETALK_FAST_SAMPLE_STEPS="2"))
    assert isinstance(started, UpstreamEngine) and isinstance(started.backend, ResidentBackend)
    yield started
    started.close()


def generate(
    engine: UpstreamEngine[ResidentBackend],
    portrait: Path,
    audio: Path,
    workdir: Path,
    prompt: str = "A presenter",
    cancel_after: float | None = None,
    quality: Quality = Quality.STANDARD,
) -> tuple[Path, list[Report]]:
    """Run one job; `cancel_after` counts from the first report, once the inputs are ready."""
    reports: list[Report] = []
    first_report: list[float] = []

    def report(percent: float, stage: Stage, eta: float | None) -> None:
        if not first_report:
            first_report.append(time.monotonic())
        reports.append((percent, stage, eta))

    def cancelled() -> bool:
        return (
            cancel_after is not None
            and bool(first_report)
            and time.monotonic() - first_report[0] > cancel_after
        )

    result = engine.generate(
        VideoRequest(portrait, audio, prompt, Resolution.P480, seed=1, quality=quality),
        workdir,
        report,
        cancelled,
    )
    return result.path, reports


def test_jobs_share_one_loaded_model(
    engine: UpstreamEngine[ResidentBackend],
    portrait_png: Path,
    speech_7s: Path,
    speech_4s: Path,
    tmp_path: Path,
) -> None:
    pid, reloads = engine.backend.worker.pid, engine.backend.worker.reloads
    path, reports = generate(engine, portrait_png, speech_7s, tmp_path / "a")
    info = probe_video(path)
    assert (info.width, info.height, info.frame_count, info.audio_codec) == (576, 704, 175, "aac")
    percents = [p for p, _, _ in reports]
    assert percents == sorted(percents)
    generating = {round(p, 2) for p, s, _ in reports if s is Stage.GENERATING}
    assert len(generating) >= 3 * 4  # every step of all three chunks
    assert reports[-1] == (100.0, Stage.ENCODING, 0.0)
    generate(engine, portrait_png, speech_4s, tmp_path / "b")
    assert (engine.backend.worker.pid, engine.backend.worker.reloads) == (pid, reloads)


def test_fast_and_standard_jobs_share_the_model_each_with_its_sampling(
    engine: UpstreamEngine[ResidentBackend], portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    pid, reloads = engine.backend.worker.pid, engine.backend.worker.reloads
    for name, quality, steps, alpha in [
        ("fast", Quality.FAST, 2, 1.0),
        ("standard", Quality.STANDARD, 4, 0.0),
    ]:
        _, reports = generate(engine, portrait_png, speech_4s, tmp_path / name, quality=quality)
        sampled = json.loads((tmp_path / name / "upstream" / "standin_sampling.json").read_text())
        assert (sampled["steps"], sampled["lora_alpha"]) == (steps, alpha)
        generating = {round(p, 2) for p, s, _ in reports if s is Stage.GENERATING}
        assert len(generating) >= 2 * steps  # the job's own step count drives the progress
    assert (engine.backend.worker.pid, engine.backend.worker.reloads) == (pid, reloads)


def test_fast_is_refused_before_the_worker_sees_the_job(
    engine: UpstreamEngine[ResidentBackend],
    standin_models: Path,
    portrait_png: Path,
    speech_4s: Path,
    tmp_path: Path,
) -> None:
    why = "this agent has no distilled LoRA (INFINITETALK_FAST_LORA is blank)"
    standard_only = UpstreamEngine(
        settings_for(standin_models), engine.backend, fast_unavailable=why
    )
    assert standard_only.quality_unavailable(Quality.FAST) == why
    assert standard_only.quality_unavailable(Quality.STANDARD) is None
    with pytest.raises(QualityUnavailableError, match="submit with quality=standard"):
        generate(standard_only, portrait_png, speech_4s, tmp_path, quality=Quality.FAST)
    assert not (tmp_path / "upstream").exists()
    assert engine.backend.worker.state is WorkerState.READY


def test_out_of_memory_fails_the_job_and_keeps_the_model(
    engine: UpstreamEngine[ResidentBackend], portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    pid = engine.backend.worker.pid
    with pytest.raises(EngineError) as caught:
        generate(engine, portrait_png, speech_4s, tmp_path / "a", "x [standin:oom]")
    assert caught.value.code == "GPU_OUT_OF_MEMORY" and not caught.value.retryable
    generate(engine, portrait_png, speech_4s, tmp_path / "b")
    assert engine.backend.worker.pid == pid


def test_cancel_stops_the_job_within_seconds_and_keeps_the_model(
    engine: UpstreamEngine[ResidentBackend], portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    pid = engine.backend.worker.pid
    started = time.monotonic()
    with pytest.raises(CancelledError):
        generate(engine, portrait_png, speech_4s, tmp_path, "x [standin:hang]", cancel_after=0.5)
    assert time.monotonic() - started < 2.5
    assert engine.backend.worker.pid == pid and engine.backend.worker.state is WorkerState.READY


def test_broken_cuda_reloads_the_model_for_the_next_job(
    engine: UpstreamEngine[ResidentBackend], portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    pid, reloads = engine.backend.worker.pid, engine.backend.worker.reloads
    with pytest.raises(EngineError) as caught:
        generate(engine, portrait_png, speech_4s, tmp_path / "a", "x [standin:cuda-broken]")
    assert caught.value.code == "GENERATION_FAILED" and caught.value.retryable
    assert engine.backend.worker.reloads == reloads + 1
    generate(engine, portrait_png, speech_4s, tmp_path / "b")
    assert engine.backend.worker.pid != pid


def test_a_worker_that_dies_is_replaced(
    engine: UpstreamEngine[ResidentBackend], portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    reloads = engine.backend.worker.reloads
    with pytest.raises(EngineError, match=r"model worker died \(exit code -9\)") as caught:
        generate(engine, portrait_png, speech_4s, tmp_path / "a", "x [standin:die]")
    assert caught.value.retryable
    assert engine.backend.worker.reloads == reloads + 1
    generate(engine, portrait_png, speech_4s, tmp_path / "b")


def test_a_worker_that_ignores_the_cancel_is_killed_after_the_grace(
    engine: UpstreamEngine[ResidentBackend], portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    reloads = engine.backend.worker.reloads
    started = time.monotonic()
    with pytest.raises(CancelledError):
        generate(engine, portrait_png, speech_4s, tmp_path, "x [standin:stuck]", cancel_after=0.3)
    assert time.monotonic() - started < 0.3 + 1 + 2  # the 1 s grace, then SIGKILL
    assert engine.backend.worker.reloads == reloads + 1


def test_the_time_limit_follows_the_audio(
    engine: UpstreamEngine[ResidentBackend],
    standin_models: Path,
    portrait_png: Path,
    speech_4s: Path,
    tmp_path: Path,
) -> None:
    short = settings_for(
        standin_models,
        INFINITETALK_TIMEOUT_BASE_SECONDS="1",
        INFINITETALK_TIMEOUT_PER_AUDIO_SECOND="0.1",
    )
    impatient = UpstreamEngine(short, engine.backend, fast_unavailable=None)
    with pytest.raises(EngineError, match=r"longer than 1 s, the limit for 4.0 s") as caught:
        generate(impatient, portrait_png, speech_4s, tmp_path, "x [standin:hang]")
    assert caught.value.code == "TIMEOUT"
    assert engine.backend.worker.state is WorkerState.READY


def test_a_model_that_cannot_load_stops_the_agent_from_starting(
    standin_models: Path, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "wan").mkdir(parents=True)
    (checkout / "generate_infinitetalk.py").write_text(
        (STANDIN_DIR / "generate_infinitetalk.py").read_text()
    )
    (checkout / "wan" / "__init__.py").touch()  # an image without torch installed
    settings = settings_for(standin_models).model_copy(update={"upstream_dir": checkout})
    with pytest.raises(
        EngineStartError, match="could not be loaded: ModuleNotFoundError: No module named 'torch'"
    ):
        start_infinitetalk(settings)


def test_close_gives_the_gpu_back(standin_models: Path) -> None:
    engine = start_infinitetalk(settings_for(standin_models))
    assert isinstance(engine, UpstreamEngine) and isinstance(engine.backend, ResidentBackend)
    pid = engine.backend.worker.pid
    assert pid is not None
    engine.close()
    assert engine.backend.worker.state is WorkerState.STOPPED
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
