"""Resident mode: the agent's model worker loads upstream once and serves every job."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from contracts import Capability, Quality, SpeakerMode, Stage
from infinitetalk.engine import CancelledError
from infinitetalk.factory import start_infinitetalk
from infinitetalk.upstream.engine import UpstreamEngine
from infinitetalk.upstream.resident_mode import ResidentBackend
from tests.upstream_smoke.conftest import (
    dubbing_run,
    engine_settings,
    generate,
    once_generating,
    out_of_memory_failure,
    two_chunk_run,
    two_speaker_run,
    verify_mp4,
)


@pytest.fixture(scope="module")
def engine(upstream_dir: Path, models: Path) -> Iterator[UpstreamEngine[ResidentBackend]]:
    engine = start_infinitetalk(engine_settings("resident", upstream_dir, models))
    assert isinstance(engine, UpstreamEngine) and isinstance(engine.backend, ResidentBackend)
    yield engine
    engine.close()


def frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_two_chunks_stream_into_one_video(
    engine: UpstreamEngine[ResidentBackend],
    speech: dict[str, Path],
    tmp_path: Path,
    summary: dict[str, Any],
) -> None:
    progress = two_chunk_run("resident", engine, speech["two_chunks"], tmp_path, summary)
    percents = [p for p, _ in progress]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert {Stage.GENERATING, Stage.ENCODING} <= {stage for _, stage in progress}


def test_short_audio_is_padded_for_upstream_then_trimmed_back(
    engine: UpstreamEngine[ResidentBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    result, _ = generate(engine, speech["short"], tmp_path)
    verify_mp4(result.path, 2.0)


def test_fast_profile_merges_the_lora_and_takes_it_out_again(
    engine: UpstreamEngine[ResidentBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    """Same seed and inputs: fast differs from standard, and standard after fast is as before."""
    before, _ = generate(engine, speech["short"], tmp_path / "before")
    fast, _ = generate(engine, speech["short"], tmp_path / "fast", quality=Quality.FAST)
    after, _ = generate(engine, speech["short"], tmp_path / "after")
    verify_mp4(fast.path, 2.0)
    standard = frames(before.path).astype(np.int16)
    assert np.abs(frames(fast.path) - standard).mean() > 1.0
    assert np.abs(frames(after.path) - standard).mean() < 0.5
    assert engine.backend.worker.reloads == 0


def test_cancel_stops_generation_and_the_worker_serves_the_next_job(
    engine: UpstreamEngine[ResidentBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(CancelledError):
        generate(engine, speech["long"], tmp_path / "cancelled", cancel_when=once_generating)
    assert time.monotonic() - started < 60
    assert engine.backend.worker.reloads == 0
    result, _ = generate(engine, speech["short"], tmp_path / "next")
    verify_mp4(result.path, 2.0)


def test_an_out_of_memory_error_in_upstream_is_reported_as_such(
    engine: UpstreamEngine[ResidentBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    failure = out_of_memory_failure(engine, speech["short"], tmp_path)
    assert not failure.retryable
    assert engine.backend.worker.reloads == 0


def test_int8_quantised_model_with_teacache(
    upstream_dir: Path, models: Path, speech: dict[str, Path], tmp_path: Path
) -> None:
    """optimum-quanto's int8 DiT and T5, read back by upstream's `requantize`; TeaCache on."""
    settings = engine_settings(
        "resident",
        upstream_dir,
        models,
        INFINITETALK_QUANT="int8",
        INFINITETALK_TEACACHE="1",
    )
    engine = start_infinitetalk(settings)
    try:
        assert engine.quality_unavailable(Quality.FAST) is not None  # no LoRA on int8
        result, _ = generate(engine, speech["short"], tmp_path)
    finally:
        engine.close()
    verify_mp4(result.path, 2.0)


def test_a_video_is_dubbed(engine: UpstreamEngine[ResidentBackend], tmp_path: Path) -> None:
    dubbing_run(engine, tmp_path)


@pytest.mark.parametrize("mode", list(SpeakerMode))
def test_two_speakers_run_on_the_multi_weights(
    engine: UpstreamEngine[ResidentBackend], mode: SpeakerMode, tmp_path: Path
) -> None:
    assert Capability.TWO_SPEAKERS in engine.capabilities()
    two_speaker_run(engine, mode, tmp_path)


def test_one_speaker_after_two_gets_the_single_weights_back(
    engine: UpstreamEngine[ResidentBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    two_speaker_run(engine, SpeakerMode.SIMULTANEOUS, tmp_path / "two")
    result, _ = generate(engine, speech["short"], tmp_path / "one")
    verify_mp4(result.path, 2.0)
    assert engine.backend.worker.reloads == 0  # swapped in place, never reloaded
