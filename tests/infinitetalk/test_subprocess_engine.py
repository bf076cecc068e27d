"""Subprocess mode against the stand-in `generate_infinitetalk.py` (upstream's CLI contract)."""

import importlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contracts import Quality, Resolution, Stage
from infinitetalk.engine import (
    AudioInfo,
    CancelledError,
    EngineError,
    PreparedAudio,
    QualityUnavailableError,
    VideoRequest,
)
from infinitetalk.factory import start_infinitetalk
from infinitetalk.media.probe import probe_video
from infinitetalk.settings import InfiniteTalkSettings, MemoryProfile, Quantization, Sampling
from infinitetalk.upstream import subprocess_mode
from infinitetalk.upstream.engine import UpstreamEngine
from infinitetalk.upstream.prepare import JobPlan
from infinitetalk.upstream.profiles import ResolvedProfile
from infinitetalk.upstream.progress import SAMPLING_END, SAMPLING_START
from infinitetalk.upstream.subprocess_mode import SubprocessBackend, build_command
from tests.fixtures.standin import STANDIN_DIR, agent_env
from tests.infinitetalk.decodes import count_decodes

Report = tuple[float, Stage, float | None]
STANDARD = InfiniteTalkSettings().sampling(Quality.STANDARD)
LIGHTX2V = "lora/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"


def settings_for(models: Path, **extra: str) -> InfiniteTalkSettings:
    return InfiniteTalkSettings.from_env({**agent_env(models, **extra), "PATH": os.environ["PATH"]})


def engine_for(models: Path, **extra: str) -> UpstreamEngine[SubprocessBackend]:
    engine = start_infinitetalk(settings_for(models, **extra))
    assert isinstance(engine, UpstreamEngine) and isinstance(engine.backend, SubprocessBackend)
    return engine


def profile(name: MemoryProfile, quantization: Quantization = Quantization.NONE) -> ResolvedProfile:
    persistent, offload = {
        MemoryProfile.FULL: (None, False),
        MemoryProfile.LOWVRAM: (0, True),
    }[name]
    return ResolvedProfile(
        name=name,
        num_persistent_param_in_dit=persistent,
        offload_model=offload,
        quantization=quantization,
        reasons=(),
    )


def a_plan(tmp_path: Path, sampling: Sampling = STANDARD) -> JobPlan:
    return JobPlan(
        image_path=tmp_path / "in" / "portrait.png",
        audio_path=tmp_path / "in" / "audio.wav",
        source_audio=tmp_path / "in" / "audio.wav",
        audio=PreparedAudio(
            info=AudioInfo(duration_seconds=60.0, sample_rate=16000, channels=1, codec="pcm_s16le"),
            aac_path=tmp_path / "in" / "audio" / "audio.m4a",
            loudness_path=tmp_path / "in" / "audio" / "loudness.f64",
            padded_path=None,
        ),
        prompt="A presenter",
        resolution=Resolution.P720,
        size=(832, 1088),
        seed=1234,
        frames=1500,
        chunks=21,
        max_frame_num=1501,
        target_frames=1500,
        timeout_seconds=600,
        sampling=sampling,
    )


def test_command_is_the_readme_run_with_what_a_service_needs(tmp_path: Path) -> None:
    settings = InfiniteTalkSettings(
        upstream_dir=Path("/opt/InfiniteTalk"),
        python=Path("/usr/bin/python3"),
        model_storage_path=Path("/runpod-volume/models"),
    )
    run = tmp_path / "upstream"
    argv = build_command(settings, profile(MemoryProfile.LOWVRAM), a_plan(tmp_path), run)
    models = "/runpod-volume/models"
    assert argv == [
        "/usr/bin/python3",
        "/opt/InfiniteTalk/generate_infinitetalk.py",
        "--task", "infinitetalk-14B",
        "--size", "infinitetalk-720",
        "--ckpt_dir", f"{models}/Wan2.1-I2V-14B-480P",
        "--infinitetalk_dir", f"{models}/InfiniteTalk/single/infinitetalk.safetensors",
        "--wav2vec_dir", f"{models}/chinese-wav2vec2-base",
        "--input_json", f"{run}/input.json",
        "--save_file", f"{run}/infinitetalk",
        "--mode", "streaming",
        "--frame_num", "81",
        "--max_frame_num", "1501",
        "--motion_frame", "9",
        "--sample_steps", "40",
        "--sample_text_guide_scale", "5",
        "--sample_audio_guide_scale", "4",
        "--color_correction_strength", "1",
        "--base_seed", "1234",
        "--offload_model", "True",
        "--num_persistent_param_in_dit", "0",
    ]  # fmt: skip


def test_optional_flags_follow_settings_and_profile(tmp_path: Path) -> None:
    settings = InfiniteTalkSettings(
        model_storage_path=Path("/m"),
        sample_shift=2.0,
        teacache=True,
        teacache_threshold=0.3,
    )
    plan = a_plan(tmp_path, settings.sampling(Quality.STANDARD))
    argv = build_command(settings, profile(MemoryProfile.FULL), plan, tmp_path)
    tail = argv[argv.index("--offload_model") :]
    assert tail == [
        "--offload_model", "False",
        "--sample_shift", "2",
        "--use_teacache", "--teacache_thresh", "0.3",
    ]  # fmt: skip
    quantised = build_command(
        InfiniteTalkSettings(model_storage_path=Path("/m")),
        profile(MemoryProfile.LOWVRAM, Quantization.FP8),
        a_plan(tmp_path),
        tmp_path,
    )
    assert quantised[-4:] == [
        "--quant", "fp8",
        "--quant_dir", "/m/InfiniteTalk/quant_models/infinitetalk_single_fp8.safetensors",
    ]  # fmt: skip


def test_a_fast_job_samples_as_upstream_advises_with_the_lora_merged(tmp_path: Path) -> None:
    settings = InfiniteTalkSettings(model_storage_path=Path("/m"))
    plan = a_plan(tmp_path, settings.sampling(Quality.FAST))
    argv = build_command(settings, profile(MemoryProfile.FULL), plan, tmp_path)
    flags = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert (
        flags["--sample_steps"],
        flags["--sample_text_guide_scale"],
        flags["--sample_audio_guide_scale"],
    ) == ("4", "1", "2")
    assert argv[argv.index("--offload_model") :] == [
        "--offload_model", "False",
        "--sample_shift", "2",
        "--lora_dir", f"/m/{LIGHTX2V}",
        "--lora_scale", "1",
    ]  # fmt: skip


def test_every_flag_is_one_upstreams_parser_accepts(tmp_path: Path, standin_imports: None) -> None:
    sys.path.insert(0, str(STANDIN_DIR))
    script = importlib.import_module("generate_infinitetalk")
    settings = InfiniteTalkSettings(teacache=True, fast_sample_shift=3.0)
    plan = a_plan(tmp_path, settings.sampling(Quality.FAST))
    argv = build_command(settings, profile(MemoryProfile.LOWVRAM), plan, tmp_path)
    args = script._parse_args(argv[2:])
    assert (args.mode, args.size, args.max_frame_num, args.motion_frame) == (
        "streaming",
        "infinitetalk-720",
        1501,
        9,
    )
    assert (args.offload_model, args.num_persistent_param_in_dit, args.sample_shift) == (
        True,
        0,
        3.0,
    )
    assert args.lora_dir == [str(settings.fast_lora_path)] and args.lora_scale == [1.0]
    assert (args.sample_steps, args.sample_text_guide_scale, args.sample_audio_guide_scale) == (
        4,
        1.0,
        2.0,
    )
    assert args.use_teacache


@pytest.mark.parametrize(
    ("flags", "status", "error"),
    [
        (["--ckpt_dir", "x", "--bogus", "1"], 2, "unrecognized arguments: --bogus"),
        (["--ckpt_dir", "x", "--size", "infinitetalk-1080"], 2, "invalid choice"),
        (["--ckpt_dir", "x", "--sample_steps"], 2, "expected one argument"),
        (["--size", "infinitetalk-480"], 1, "Please specify the checkpoint directory"),
    ],
)
def test_the_stand_in_refuses_what_upstream_refuses(
    flags: list[str], status: int, error: str
) -> None:
    done = subprocess.run(
        [sys.executable, str(STANDIN_DIR / "generate_infinitetalk.py"), *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == status
    assert error in done.stderr


class Progress:
    def __init__(self) -> None:
        self.reports: list[Report] = []

    def __call__(self, percent: float, stage: Stage, eta: float | None) -> None:
        self.reports.append((percent, stage, eta))


def test_a_job_runs_in_its_own_directory_and_reports_each_chunk(
    standin_models: Path, portrait_png: Path, speech_7s: Path, tmp_path: Path
) -> None:
    engine = engine_for(standin_models, STANDIN_STEP_SECONDS="0.1")
    progress = Progress()
    request = VideoRequest(portrait_png, speech_7s, "A presenter", Resolution.P480, seed=3)
    result = engine.generate(request, tmp_path, progress, lambda: False)

    assert result.engine == "infinitetalk" and result.path == tmp_path / "infinitetalk.mp4"
    assert (result.width, result.height) == (576, 704)
    info = probe_video(result.path)
    assert info.frame_count == 175 and info.faststart
    assert info.audio_sample_rate == 16000 and info.audio_codec == "aac"
    run = tmp_path / "upstream"
    assert json.loads((run / "input.json").read_text()) == {
        "prompt": "A presenter",
        "cond_video": str(tmp_path / "inputs" / "portrait.png"),
        "cond_audio": {"person1": str(speech_7s)},
    }
    assert (run / "save_audio" / "portrait" / "sum_all.wav").is_file()  # upstream's cwd files
    assert (run / "infinitetalk.mp4").is_file()  # --save_file stem + ".mp4"

    percents = [p for p, _, _ in progress.reports]
    assert percents == sorted(percents)
    sampling = sorted({round(p, 3) for p, s, _ in progress.reports if s is Stage.GENERATING})
    span = SAMPLING_END - SAMPLING_START
    chunk_ends = [round(SAMPLING_START + span * k / 3, 3) for k in (1, 2, 3)]
    assert set(chunk_ends) <= set(sampling)  # 3 chunks of 4 steps, each bar seen to its end
    assert len(sampling) >= 6
    assert any(s is Stage.ENCODING for _, s, _ in progress.reports)
    assert any(
        eta is not None and eta > 0 for _, s, eta in progress.reports if s is Stage.GENERATING
    )
    assert progress.reports[-1] == (100.0, Stage.ENCODING, 0.0)


def test_a_job_used_directly_decodes_its_audio_once(
    standin_models: Path,
    portrait_png: Path,
    speech_4s: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the agent's pass the engine makes it: the mux stream-copies its AAC track."""
    decodes = count_decodes(monkeypatch)
    request = VideoRequest(portrait_png, speech_4s, "A presenter", Resolution.P480, seed=3)
    engine_for(standin_models).generate(request, tmp_path, Progress(), lambda: False)
    assert decodes[str(speech_4s.resolve())] == 1


def sampled(workdir: Path) -> dict[str, float]:
    """What the stand-in sampled with, as it wrote it in its working directory."""
    return json.loads((workdir / "upstream" / "standin_sampling.json").read_text())


def test_each_job_samples_with_its_quality(
    standin_models: Path, portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    engine = engine_for(standin_models, INFINITETALK_FAST_SAMPLE_STEPS="2")
    assert engine.quality_unavailable(Quality.FAST) is None
    keys = ("steps", "text_guide_scale", "audio_guide_scale", "lora_alpha")
    for quality, values in [(Quality.FAST, (2, 1, 2, 1)), (Quality.STANDARD, (4, 5, 4, 0))]:
        expected = dict(zip(keys, values, strict=True))
        progress = Progress()
        request = VideoRequest(portrait_png, speech_4s, "A presenter", quality=quality)
        engine.generate(request, tmp_path / quality, progress, lambda: False)
        assert sampled(tmp_path / quality) == expected
        ends = [p for p, s, _ in progress.reports if s is Stage.GENERATING]
        assert max(ends) == pytest.approx(SAMPLING_END)  # every step of both chunks seen


def test_fast_is_refused_without_its_lora_before_upstream_starts(
    standin_models: Path, portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    engine = engine_for(standin_models, INFINITETALK_FAST_LORA="lora/missing.safetensors")
    request = VideoRequest(portrait_png, speech_4s, "A presenter", quality=Quality.FAST)
    with pytest.raises(QualityUnavailableError) as caught:
        engine.generate(request, tmp_path, Progress(), lambda: False)
    assert (caught.value.code, caught.value.retryable) == ("QUALITY_UNAVAILABLE", False)
    assert caught.value.message == (
        "quality=fast is not available: this agent has no distilled LoRA "
        "(INFINITETALK_FAST_LORA=lora/missing.safetensors is missing); "
        "submit with quality=standard"
    )
    assert not (tmp_path / "upstream").exists()
    assert engine.quality_unavailable(Quality.STANDARD) is None


def test_clients_never_see_upstreams_log_but_the_agent_log_does(
    standin_models: Path,
    portrait_png: Path,
    speech_7s: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = engine_for(standin_models)
    request = VideoRequest(portrait_png, speech_7s, "talk [standin:oom]")
    with caplog.at_level(logging.WARNING), pytest.raises(EngineError) as caught:
        engine.generate(request, tmp_path, Progress(), lambda: False)
    assert caught.value.code == "GPU_OUT_OF_MEMORY" and not caught.value.retryable
    assert "/" not in caught.value.message
    (record,) = [r for r in caplog.records if r.getMessage() == "upstream failed"]
    assert "CUDA out of memory" in record.log_tail  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("crash", "InfiniteTalk failed (exit status 1)"),
        ("die", "InfiniteTalk was killed by SIGKILL"),
        ("no-video", "InfiniteTalk exited without writing a video"),
    ],
)
def test_upstream_failures_are_retryable_generation_failures(
    standin_models: Path,
    portrait_png: Path,
    speech_7s: Path,
    tmp_path: Path,
    marker: str,
    message: str,
) -> None:
    request = VideoRequest(portrait_png, speech_7s, f"talk [standin:{marker}]")
    with pytest.raises(EngineError, match=re.escape(message)) as caught:
        engine_for(standin_models).generate(request, tmp_path, Progress(), lambda: False)
    assert caught.value.code == "GENERATION_FAILED" and caught.value.retryable


def grandchild_alive(run_dir: Path) -> bool:
    """Whether upstream's child still runs (a killed one may linger as a zombie until reaped)."""
    pid = int((run_dir / "grandchild.pid").read_text())
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_cancel_kills_the_whole_process_group_within_seconds(
    standin_models: Path, portrait_png: Path, speech_7s: Path, tmp_path: Path
) -> None:
    """Cancelled once upstream's child runs (a fixed delay raced a loaded machine's start)."""
    request = VideoRequest(portrait_png, speech_7s, "talk [standin:hang]")
    pid_file = tmp_path / "upstream" / "grandchild.pid"
    cancelled_at: list[float] = []

    def cancel_once_the_grandchild_runs() -> bool:
        if not cancelled_at and pid_file.exists():
            cancelled_at.append(time.monotonic())
        return bool(cancelled_at)

    with pytest.raises(CancelledError):
        engine_for(standin_models).generate(
            request, tmp_path, Progress(), cancel_once_the_grandchild_runs
        )
    assert time.monotonic() - cancelled_at[0] < 3
    assert not grandchild_alive(tmp_path / "upstream")


def test_a_process_ignoring_sigterm_is_killed_at_its_time_limit(
    standin_models: Path,
    portrait_png: Path,
    speech_7s: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(subprocess_mode, "TERM_GRACE_SECONDS", 0.5)
    engine = engine_for(
        standin_models,
        INFINITETALK_TIMEOUT_BASE_SECONDS="1",
        INFINITETALK_TIMEOUT_PER_AUDIO_SECOND="0.1",
    )
    request = VideoRequest(portrait_png, speech_7s, "talk [standin:stuck]")
    started = time.monotonic()
    with pytest.raises(
        EngineError, match=r"longer than 2 s, the limit for 7.0 s of audio"
    ) as caught:
        engine.generate(request, tmp_path, Progress(), lambda: False)
    assert caught.value.code == "TIMEOUT" and not caught.value.retryable
    assert time.monotonic() - started < 6
    assert not grandchild_alive(tmp_path / "upstream")
