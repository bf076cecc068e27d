"""The upstream smoke suite: run by `scripts/upstream_smoke.sh` (`make smoke-upstream`).

It needs the CPU environment that script builds (torch, upstream's dependencies, the CPU
harness switched on) and is kept out of the project's own test run (pyproject `addopts`).
"""

import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import av
import pytest

from contracts import BoxSource, Quality, Resolution, SpeakerAssignment, SpeakerMode, Stage
from examples.make_examples import make_speech_wav
from infinitetalk.engine import EngineError, VideoRequest
from infinitetalk.media.speaker_tracks import prepare_speakers
from infinitetalk.media.video_input import probe_video_input
from infinitetalk.settings import InfiniteTalkSettings
from infinitetalk.upstream import pinned
from tests.conftest import mp4_bytes, two_faces_png
from tests.upstream_smoke import cpu
from tests.upstream_smoke.tiny_weights import make_models

REPO = Path(__file__).resolve().parents[2]
SMOKE_DIR = REPO / ".avatar" / "smoke"
PORTRAIT = REPO / "examples" / "portrait.png"
FPS = 25


@pytest.fixture(scope="session", autouse=True)
def harness() -> None:
    """Fail at once, and say why, outside the environment the script builds."""
    if os.environ.get(cpu.ENV_FLAG) != "1" or not any(
        isinstance(finder, cpu.AfterImport) for finder in sys.meta_path
    ):
        pytest.fail("run the upstream smoke suite with scripts/upstream_smoke.sh")
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"upstream runs {' and '.join(missing)}: install ffmpeg")


@pytest.fixture(scope="session")
def upstream_dir() -> Path:
    path = Path(os.environ.get("AVATAR_UPSTREAM_DIR", ""))
    if not (path / pinned.SCRIPT).is_file():
        pytest.fail("AVATAR_UPSTREAM_DIR must name the upstream checkout (fetch_upstream.sh)")
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory, upstream_dir: Path) -> Path:
    return make_models(tmp_path_factory.mktemp("models"), upstream_dir)


@pytest.fixture(scope="session")
def summary(upstream_dir: Path) -> Iterator[dict[str, Any]]:
    """Collects each mode's run; written to .avatar/smoke/summary.json at the end."""
    SMOKE_DIR.mkdir(parents=True, exist_ok=True)
    for stale in ("resident.mp4", "subprocess.mp4", "parallel.mp4", "summary.json"):
        (SMOKE_DIR / stale).unlink(missing_ok=True)
    modes: dict[str, Any] = {}
    yield modes
    document = {
        "upstream_commit": pinned.checkout_commit(upstream_dir),
        "python": platform.python_version(),
        **{name: metadata.version(name) for name in ("torch", "diffusers", "transformers")},
        "modes": modes,
    }
    (SMOKE_DIR / "summary.json").write_text(json.dumps(document, indent=2) + "\n")


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Speech clips by length: 5 s is two chunks, 2 s is under one (padded), 12 s is three."""
    folder = tmp_path_factory.mktemp("speech")
    return {
        name: make_speech_wav(folder / f"{name}.wav", seconds=seconds)
        for name, seconds in (("two_chunks", 5.0), ("short", 2.0), ("long", 12.0))
    }


def engine_settings(
    mode: str, upstream_dir: Path, models: Path, **env: str
) -> InfiniteTalkSettings:
    """Settings as an agent reads them from its environment on a pod.

    Standard jobs sample 8 steps instead of 40 to keep the suite short: the path is the
    same (three model calls per step: text, audio and unconditional guidance).
    """
    return InfiniteTalkSettings.from_env(
        {
            **os.environ,
            "INFINITETALK_MODE": mode,
            "INFINITETALK_DIR": str(upstream_dir),
            "INFINITETALK_PYTHON": sys.executable,
            "MODEL_STORAGE_PATH": str(models),
            "INFINITETALK_MEMORY_PROFILE": "full",
            "INFINITETALK_QUANT": "none",
            "INFINITETALK_SAMPLE_STEPS": "8",
            "INFINITETALK_FAST_LORA": "lora/fast_lora.safetensors",
            **env,
        }
    )


def verify_mp4(path: Path, audio_seconds: float) -> int:
    """H.264 + AAC, and as long as the audio (to the frame); returns the frame count."""
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        frames = sum(1 for _ in container.decode(video))
        duration = float(container.duration) / av.time_base
    assert frames == round(audio_seconds * FPS)
    assert abs(duration - audio_seconds) <= 1.5 / FPS
    return frames


PROMPT = "a presenter talking to the camera"
Progress = list[tuple[float, Stage]]


def generate(
    engine: Any,
    audio: Path,
    workdir: Path,
    *,
    prompt: str = PROMPT,
    quality: Quality = Quality.STANDARD,
    cancel_when: Any = None,
) -> Any:
    progress: Progress = []
    request = VideoRequest(PORTRAIT, audio, prompt, Resolution.P480, seed=7, quality=quality)
    return engine.generate(
        request,
        workdir,
        lambda percent, stage, eta: progress.append((percent, stage)),
        (lambda: cancel_when(progress)) if cancel_when else (lambda: False),
    ), progress


def two_chunk_run(
    mode: str, engine: Any, audio: Path, workdir: Path, summary: dict[str, Any]
) -> Progress:
    """The suite's main run of a mode: 5 s of speech, two chunks, kept as `<mode>.mp4`."""
    started = time.monotonic()
    result, progress = generate(engine, audio, workdir)
    seconds = time.monotonic() - started
    output = SMOKE_DIR / f"{mode}.mp4"
    output.write_bytes(result.path.read_bytes())
    frames = pinned.embedding_frames(5.0)
    summary[mode] = {
        "frames": verify_mp4(output, 5.0),
        "chunks": pinned.chunk_count(frames),
        "seconds": round(seconds, 1),
        "output": str(output.relative_to(REPO)),
    }
    assert summary[mode]["chunks"] == 2
    return progress


def once_generating(progress: Progress) -> bool:
    """A cancel condition: the first sampling step has been reported."""
    return any(stage is Stage.GENERATING and percent > 0 for percent, stage in progress)


def out_of_memory_failure(engine: Any, audio: Path, workdir: Path) -> EngineError:
    """Upstream raises CUDA's out-of-memory error (the harness's marker); the client sees it
    as GPU_OUT_OF_MEMORY, in words that name neither the harness nor upstream's internals."""
    with pytest.raises(EngineError) as failure:
        generate(engine, audio, workdir, prompt=f"a presenter {cpu.OOM_MARKER}")
    assert failure.value.code == "GPU_OUT_OF_MEMORY"
    assert "smoke" not in failure.value.message
    return failure.value


def dubbing_run(engine: Any, workdir: Path) -> Path:
    """A 1 s video dubbed with 2 s of speech: upstream reads the video as `cond_video`
    (held on its last frame), the output is as long as the audio."""
    workdir.mkdir(parents=True, exist_ok=True)
    video = workdir / "in.mp4"
    video.write_bytes(mp4_bytes(1.0, size=(96, 120)))
    probe_video_input(video, workdir / "first.png")
    audio = make_speech_wav(workdir / "speech.wav", seconds=2.0)
    request = VideoRequest(
        workdir / "first.png", audio, PROMPT, Resolution.P480, seed=7, video_path=video
    )
    result = engine.generate(request, workdir / "run", lambda *a: None, lambda: False)
    verify_mp4(result.path, 2.0)
    return Path(result.path)


def two_speaker_run(engine: Any, mode: SpeakerMode, workdir: Path) -> Path:
    """Two people side by side, 1.2 s and 0.8 s of speech each, in upstream's multi mode
    on the multi weights; `simultaneous` pads the second track so `para` never sees two
    lengths. The output follows the mix: 2 s one after the other, 1.2 s together."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "two.png").write_bytes(two_faces_png())
    first = make_speech_wav(workdir / "a.wav", seconds=1.2)
    second = make_speech_wav(workdir / "b.wav", seconds=0.8)
    assignment = SpeakerAssignment(
        boxes=((0, 0, 240, 240), (240, 0, 480, 240)), source=BoxSource.GIVEN
    )
    mixed, prepared, tracks = prepare_speakers(first, second, mode, assignment, workdir / "audio")
    request = VideoRequest(
        workdir / "two.png",
        mixed,
        PROMPT,
        Resolution.P480,
        seed=7,
        audio=prepared,
        speakers=tracks,
    )
    result = engine.generate(request, workdir / "run", lambda *a: None, lambda: False)
    verify_mp4(result.path, 2.0 if mode is SpeakerMode.SEQUENTIAL else 1.2)
    return Path(result.path)
