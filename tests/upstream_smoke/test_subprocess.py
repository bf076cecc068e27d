"""Subprocess mode: each job runs upstream's generate_infinitetalk.py as its own process."""

from pathlib import Path
from typing import Any

import psutil
import pytest

from contracts import Capability, Quality, SpeakerMode, Stage
from infinitetalk.engine import CancelledError
from infinitetalk.factory import start_infinitetalk
from infinitetalk.upstream.engine import UpstreamEngine
from infinitetalk.upstream.subprocess_mode import SubprocessBackend
from tests.upstream_smoke.conftest import (
    engine_settings,
    generate,
    once_generating,
    out_of_memory_failure,
    two_chunk_run,
    two_speaker_run,
    verify_mp4,
)


@pytest.fixture(scope="module")
def engine(upstream_dir: Path, models: Path) -> UpstreamEngine[SubprocessBackend]:
    engine = start_infinitetalk(engine_settings("subprocess", upstream_dir, models))
    assert isinstance(engine, UpstreamEngine) and isinstance(engine.backend, SubprocessBackend)
    return engine


def test_two_chunks_stream_into_one_video(
    engine: UpstreamEngine[SubprocessBackend],
    speech: dict[str, Path],
    tmp_path: Path,
    summary: dict[str, Any],
) -> None:
    progress = two_chunk_run("subprocess", engine, speech["two_chunks"], tmp_path, summary)
    generating = [p for p, stage in progress if stage is Stage.GENERATING]
    assert len(set(generating)) > 2  # upstream's tqdm bars, parsed from its stderr


def test_fast_profile_runs_upstream_with_the_lora(
    engine: UpstreamEngine[SubprocessBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    result, _ = generate(engine, speech["short"], tmp_path, quality=Quality.FAST)
    verify_mp4(result.path, 2.0)


def test_cancel_kills_upstream_and_every_process_it_started(
    engine: UpstreamEngine[SubprocessBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(CancelledError):
        generate(engine, speech["long"], tmp_path, cancel_when=once_generating)
    leftovers = [
        process.info
        for process in psutil.process_iter(["pid", "cwd", "cmdline"])
        if str(tmp_path) in (process.info["cwd"] or "")
        or any(str(tmp_path) in part for part in process.info["cmdline"] or ())
    ]
    assert leftovers == []


def test_an_out_of_memory_error_in_upstream_is_reported_as_such(
    engine: UpstreamEngine[SubprocessBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    out_of_memory_failure(engine, speech["short"], tmp_path)


def test_two_speakers_at_once_on_the_multi_weights(
    engine: UpstreamEngine[SubprocessBackend], tmp_path: Path
) -> None:
    """This mode's own multi input: `--input_json` with person2, `audio_type` and `bbox`, and
    the multi weights on the command line. (A video to dub differs from a portrait here only
    in the file `cond_video` names: the resident mode's dubbing job runs it.)"""
    assert Capability.TWO_SPEAKERS in engine.capabilities()
    two_speaker_run(engine, SpeakerMode.SIMULTANEOUS, tmp_path)
