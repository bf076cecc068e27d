"""bench/gpu.py without a GPU: arguments, nvidia-smi parsing, the VRAM poller, one run's
record, and the whole bench as a process (nothing there; the stand-in upstream; a budget)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from bench.gpu import (
    Bench,
    BenchReport,
    GpuInfo,
    VramPoller,
    measure_run,
    parse_args,
    parse_gpus,
    parse_memory_used,
    query_gpus,
)
from bench.inputs import InputsReport, inputs_run
from contracts import BoxSource, Capability, Quality, Resolution, SpeakerMode, Stage
from infinitetalk.engine import (
    CancelCheck,
    EngineError,
    ProgressCallback,
    VideoRequest,
    VideoResult,
)
from infinitetalk.media.faces import detector_available
from infinitetalk.media.probe import probe_audio
from infinitetalk.settings import InfiniteTalkSettings, Quantization
from infinitetalk.upstream.weights import fast_lora_file, required_weights
from tests.bench.conftest import HAS_NVIDIA_SMI, ROOT
from tests.conftest import mp4_bytes


def run_bench(env: dict[str, str], *args: str, timeout: float = 120) -> tuple[int, dict, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    elapsed = time.monotonic() - started
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON document:\n{done.stdout}\n{done.stderr}")
    return done.returncode, report, elapsed


def test_defaults_measure_both_profiles_at_both_resolutions() -> None:
    args = parse_args([])
    assert args.profiles == [Quality.FAST, Quality.STANDARD]
    assert args.resolutions == [Resolution.P480, Resolution.P720]
    assert 5 <= args.seconds <= 8 and args.budget_seconds is None and args.out is None


def test_lists_are_parsed_in_order_without_repeats() -> None:
    args = parse_args(
        ["--profiles", "standard, FAST,standard", "--resolutions", "720p", "--seconds", "6.5"]
    )
    assert args.profiles == [Quality.STANDARD, Quality.FAST]
    assert args.resolutions == [Resolution.P720]
    assert args.seconds == 6.5


@pytest.mark.parametrize(
    "argv",
    [
        ["--profiles", "turbo"],
        ["--profiles", ","],
        ["--resolutions", "1080p"],
        ["--seconds", "0"],
        ["--seconds", "nan"],
        ["--budget-seconds", "-5"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2


def test_memory_used_is_one_number_per_gpu() -> None:
    assert parse_memory_used("81234\n512\n") == [81234, 512]
    for bad in ("", "[N/A]\n", "81234 MiB\n"):
        with pytest.raises(ValueError):
            parse_memory_used(bad)


def test_gpu_names_may_contain_commas() -> None:
    assert parse_gpus("NVIDIA H200, 143771\nOdd, Name, [N/A]\n") == [
        GpuInfo(name="NVIDIA H200", memory_total_mib=143771),
        GpuInfo(name="Odd, Name", memory_total_mib=None),
    ]


def test_without_nvidia_smi_the_gpus_are_unknown_and_why() -> None:
    def missing() -> str:
        raise FileNotFoundError("nvidia-smi")

    assert query_gpus(missing) == ([], "nvidia-smi: nvidia-smi")


def test_the_poller_keeps_the_peak_of_the_fullest_gpu() -> None:
    samples = iter(["100\n7\n", "900\n3\n", "400\n950\n"])
    last = "10\n10\n"

    def query() -> str:
        return next(samples, last)

    with VramPoller(0.01, query) as poller:
        time.sleep(0.1)
    assert poller.fields() == {"peak_vram_mib": 950, "vram_error": None}


def test_the_poller_reports_why_it_has_no_peak() -> None:
    with VramPoller(0.01, lambda: "[N/A]\n") as poller:
        pass
    assert poller.fields() == {
        "peak_vram_mib": None,
        "vram_error": "nvidia-smi: invalid literal for int() with base 10: '[N/A]'",
    }


class FakeEngine:
    """Two seconds of video per job, or the failure it is given."""

    name = "infinitetalk"

    def __init__(self, fail: EngineError | None = None, unavailable: str | None = None) -> None:
        self.fail = fail
        self.unavailable = unavailable
        self.requests: list[VideoRequest] = []

    def quality_unavailable(self, quality: Quality) -> str | None:
        return self.unavailable if quality is Quality.FAST else None

    def generate(
        self,
        request: VideoRequest,
        workdir: Path,
        on_progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> VideoResult:
        self.requests.append(request)
        on_progress(50.0, Stage.GENERATING, 0.5)
        if self.fail is not None:
            raise self.fail
        return VideoResult(workdir / "out.mp4", 2.0, 576, 704, self.name)


@pytest.fixture
def settings(tmp_path: Path) -> InfiniteTalkSettings:
    return InfiniteTalkSettings(model_storage_path=tmp_path)


def test_a_run_reports_gpu_seconds_per_video_second(
    settings: InfiniteTalkSettings, tmp_path: Path
) -> None:
    engine = FakeEngine()
    audio = tmp_path / "a.wav"
    run = measure_run(engine, settings, Quality.FAST, Resolution.P480, audio, 5.0, tmp_path, 0.05)
    assert run.status == "ok" and run.error is None
    assert run.steps == settings.fast_sample_steps and run.chunks == 2
    assert run.video_seconds == 2.0 and (run.width, run.height) == (576, 704)
    assert run.wall_seconds is not None and run.gpu_seconds_per_video_second is not None
    assert run.gpu_seconds_per_video_second == pytest.approx(run.wall_seconds / 2.0, abs=0.01)
    request = engine.requests[0]
    assert (request.quality, request.resolution, request.audio_path) == (
        Quality.FAST,
        Resolution.P480,
        audio,
    )


def test_an_engine_failure_is_a_result_not_a_crash(
    settings: InfiniteTalkSettings, tmp_path: Path
) -> None:
    oom = EngineError("GPU_OUT_OF_MEMORY", "out of GPU memory")
    engine = FakeEngine(fail=oom)
    run = measure_run(
        engine, settings, Quality.STANDARD, Resolution.P720, tmp_path / "a", 5.0, tmp_path, 0.05
    )
    assert run.status == "failed" and run.error == "GPU_OUT_OF_MEMORY: out of GPU memory"
    assert run.progress_percent == 50.0 and run.steps == settings.sample_steps


def test_an_unavailable_quality_is_skipped_with_the_engines_reason(
    settings: InfiniteTalkSettings, tmp_path: Path
) -> None:
    engine = FakeEngine(unavailable="no LoRA (INFINITETALK_FAST_LORA is blank)")
    run = measure_run(
        engine, settings, Quality.FAST, Resolution.P480, tmp_path / "a", 5.0, tmp_path, 0.05
    )
    assert run.status == "skipped" and run.error == "no LoRA (INFINITETALK_FAST_LORA is blank)"
    assert engine.requests == []


def test_without_checkout_or_weights_it_lists_exactly_what_is_missing(
    no_gpu_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "report" / "bench.json"
    status, report, elapsed = run_bench(no_gpu_env, "--out", str(out))
    assert status == 1 and elapsed < 30
    assert json.loads(out.read_text()) == report
    parsed = BenchReport.model_validate(report)
    assert not parsed.ok and parsed.load is None and parsed.runs == []
    if not HAS_NVIDIA_SMI:
        assert parsed.gpus == [] and parsed.gpu_error is not None
    settings = InfiniteTalkSettings(model_storage_path=tmp_path / "models")
    expected = [str(w.path) for w in required_weights(settings, Quantization.NONE)]
    lora = fast_lora_file(settings)
    assert lora is not None
    missing = "\n".join(parsed.missing)
    assert f"{tmp_path / 'no-checkout'} has no generate_infinitetalk.py" in missing
    assert all(f": {path}" in missing for path in expected)
    assert "quality=fast: " in missing and str(settings.fast_lora) in missing
    assert parsed.probe is not None
    assert {w.path for w in parsed.probe.weights} == set(expected)


def test_without_the_fast_profile_the_fast_lora_is_not_asked_for(
    no_gpu_env: dict[str, str],
) -> None:
    status, report, _ = run_bench(no_gpu_env, "--profiles", "standard")
    assert status == 1
    assert not any("quality=fast" in line for line in report["missing"])


def test_bad_settings_exit_2_with_json(no_gpu_env: dict[str, str]) -> None:
    env = {**no_gpu_env, "INFINITETALK_SAMPLE_STEPS": "0"}
    status, report, _ = run_bench(env)
    assert status == 2 and "INFINITETALK_SAMPLE_STEPS" in report["error"]


def test_the_stand_in_upstream_is_measured_end_to_end(
    standin_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    status, report, _ = run_bench(standin_env, "--seconds", "4", "--out", str(out))
    parsed = BenchReport.model_validate(report)
    assert status == 0 and parsed.ok, report
    assert parsed.gpus == [GpuInfo(name="NVIDIA H200", memory_total_mib=143771)]
    assert parsed.probe is not None and parsed.probe.mode.value == "resident"
    assert parsed.load is not None and parsed.load.error is None
    assert parsed.load.seconds > 0 and parsed.load.peak_vram_mib == 2048
    assert [(r.quality, r.resolution) for r in parsed.runs] == [
        (Quality.FAST, Resolution.P480),
        (Quality.FAST, Resolution.P720),
        (Quality.STANDARD, Resolution.P480),
        (Quality.STANDARD, Resolution.P720),
    ]
    for run in parsed.runs:
        assert run.status == "ok" and run.peak_vram_mib == 2048 and run.chunks == 2
        assert run.video_seconds == pytest.approx(4.0, abs=0.05)
        assert run.gpu_seconds_per_video_second and run.gpu_seconds_per_video_second > 0
    assert [r.steps for r in parsed.runs] == [4, 4, 4, 4]  # the stand-in's and fast's
    assert json.loads(out.read_text()) == report


def test_only_the_fast_lora_missing_skips_the_fast_runs(standin_env: dict[str, str]) -> None:
    env = {**standin_env, "INFINITETALK_FAST_LORA": ""}
    status, report, _ = run_bench(env, "--resolutions", "480p", "--seconds", "2")
    assert status == 1
    assert [(r["quality"], r["status"]) for r in report["runs"]] == [
        ("fast", "skipped"),
        ("standard", "ok"),
    ]
    assert "INFINITETALK_FAST_LORA is blank" in report["runs"][0]["error"]
    assert report["missing"] == [f"quality=fast: {report['runs'][0]['error']}"]


def test_a_budget_stops_the_run_in_progress_and_says_how_far_it_got(
    standin_env: dict[str, str],
) -> None:
    env = {**standin_env, "STANDIN_STEP_SECONDS": "0.5", "INFINITETALK_SAMPLE_STEPS": "8"}
    status, report, elapsed = run_bench(
        env, "--profiles", "standard", "--seconds", "4", "--budget-seconds", "6"
    )
    assert status == 1 and elapsed < 30
    assert report["stopped"] == "budget of 6 s used up"
    (run,) = report["runs"]
    assert run["status"] == "interrupted" and 0 < run["progress_percent"] < 100
    assert run["estimated_total_seconds"] > run["wall_seconds"]


class InputsEngine:
    """Takes every input; writes a video as long as the audio, `short` seconds less, or
    fails a two-speaker job with `fail`."""

    name = "infinitetalk"

    def __init__(self, short: float = 0.0, fail: EngineError | None = None) -> None:
        self.short = short
        self.fail = fail
        self.requests: list[VideoRequest] = []

    def capabilities(self) -> frozenset[Capability]:
        return frozenset(Capability)

    def quality_unavailable(self, quality: Quality) -> str | None:
        return None

    def generate(
        self,
        request: VideoRequest,
        workdir: Path,
        on_progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> VideoResult:
        self.requests.append(request)
        if self.fail is not None and request.speakers is not None:
            raise self.fail
        seconds = probe_audio(request.audio_path).duration_seconds - self.short
        path = workdir / "out.mp4"
        path.write_bytes(mp4_bytes(seconds))
        return VideoResult(path, seconds, 96, 120, self.name)


def run_inputs(
    engine: InputsEngine, tmp_path: Path, unavailable: str | None = None
) -> InputsReport:
    return inputs_run(
        engine,
        Quality.FAST,
        Resolution.P480,
        "a prompt",
        7,
        ROOT / "examples" / "portrait.png",
        unavailable,
        tmp_path / "work",
        tmp_path / "inputs",
    )


def test_inputs_dub_a_short_video_and_run_both_speaker_modes(tmp_path: Path) -> None:
    engine = InputsEngine()
    report = run_inputs(engine, tmp_path)
    assert report.ok and report.two_speakers_unavailable is None
    assert [(job.kind, job.mode, job.status) for job in report.jobs] == [
        ("dubbing", None, "ok"),
        ("two_speakers", SpeakerMode.SEQUENTIAL, "ok"),
        ("two_speakers", SpeakerMode.SIMULTANEOUS, "ok"),
    ]
    # The speech outlasts the 2 s video (its last frame held); 3 s + 2 s of speakers.
    assert [(job.audio_seconds, job.frames) for job in report.jobs] == [
        (5.0, 125),
        (5.0, 125),
        (3.0, 75),
    ]
    for job in report.jobs:
        assert job.video == str(tmp_path / "inputs" / Path(job.video or "").name)
        assert Path(job.video).is_file() and job.wall_seconds is not None
    dubbing, sequential, simultaneous = engine.requests
    assert dubbing.video_path == tmp_path / "inputs" / "dubbing-source.mp4"
    assert dubbing.image_path.name == "first.png" and dubbing.speakers is None
    with av.open(str(dubbing.video_path)) as source:
        assert source.streams.video[0].frames == 50
    assert (dubbing.quality, dubbing.resolution, dubbing.seed) == (
        Quality.FAST,
        Resolution.P480,
        7,
    )
    assert report.speakers is not None
    for request, mode in zip((sequential, simultaneous), SpeakerMode, strict=True):
        assert request.speakers is not None and request.speakers.mode is mode
        assert request.speakers.assignment == report.speakers
        assert request.image_path == tmp_path / "inputs" / "two-speakers.jpg"
    assert report.speakers.source is (
        BoxSource.DETECTED if detector_available() else BoxSource.HALVES
    )


def test_a_video_off_its_audio_or_an_engine_failure_fails_the_inputs(tmp_path: Path) -> None:
    oom = EngineError("GPU_OUT_OF_MEMORY", "out of GPU memory")
    report = run_inputs(InputsEngine(short=0.4, fail=oom), tmp_path)
    assert not report.ok
    dubbing, *speakers = report.jobs
    assert dubbing.status == "failed" and dubbing.frames == 115
    assert dubbing.error == "115 frames (4.600 s) for 5.000 s of audio"
    assert [(job.status, job.error) for job in speakers] == [
        ("failed", "GPU_OUT_OF_MEMORY: out of GPU memory")
    ] * 2


def test_without_two_speakers_those_jobs_are_skipped_with_the_reason(tmp_path: Path) -> None:
    engine = InputsEngine()
    report = run_inputs(engine, tmp_path, unavailable="no multi weights")
    assert report.ok and report.speakers is None
    assert [(job.kind, job.status, job.error) for job in report.jobs[1:]] == [
        ("two_speakers", "skipped", "no multi weights")
    ] * 2
    assert [request.speakers for request in engine.requests] == [None]


def test_two_speakers_are_asked_of_the_engines_capabilities() -> None:
    bench = Bench(parse_args([]))
    assert bench._two_speakers_unavailable(InputsEngine()) is None
    assert bench._two_speakers_unavailable(FakeEngine()) == (
        "the engine does not advertise the two_speakers capability"
    )


def test_the_stand_in_upstream_dubs_a_video_and_skips_two_speakers_without_multi_weights(
    standin_env: dict[str, str], tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    status, report, _ = run_bench(
        standin_env,
        *("--profiles", "fast", "--resolutions", "480p", "--seconds", "2"),
        *("--inputs-dir", str(inputs)),
    )
    parsed = BenchReport.model_validate(report)
    assert status == 0 and parsed.ok, report
    assert parsed.inputs is not None and parsed.inputs.ok
    assert (parsed.inputs.quality, parsed.inputs.resolution) == (Quality.FAST, Resolution.P480)
    dubbing, *speakers = parsed.inputs.jobs
    assert (dubbing.status, dubbing.frames, dubbing.video) == (
        "ok",
        125,
        str(inputs / "dubbing.mp4"),
    )
    assert (dubbing.width, dubbing.height) == (576, 704)  # the 512x640 video's 480p bucket
    assert "multi weights" in (parsed.inputs.two_speakers_unavailable or "")
    assert [(job.status, job.error) for job in speakers] == [
        ("skipped", parsed.inputs.two_speakers_unavailable)
    ] * 2
    assert {p.name for p in inputs.iterdir()} == {
        "dubbing-source.mp4",
        "dubbing.mp4",
        "two-speakers.jpg",
    }
    assert len(parsed.runs) == 1 and parsed.runs[0].status == "ok"
