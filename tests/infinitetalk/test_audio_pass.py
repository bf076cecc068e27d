"""The audio's one pass: what it makes, and that a job decodes its audio exactly once."""

import os
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import av
import pytest

from contracts import FailureCode
from contracts.media import EngineName, mp3_seconds
from gpu_agent import cli
from infinitetalk.engine import Engine, InvalidInputError
from infinitetalk.factory import start_infinitetalk
from infinitetalk.media.audio_pass import (
    PAD_RATE,
    PADDED_AUDIO_SECONDS,
    LengthLimit,
    prepare_audio,
    read_loudness,
)
from infinitetalk.media.output import FRAME_SECONDS
from infinitetalk.media.probe import probe_audio
from infinitetalk.preview.engine import PreviewEngine
from infinitetalk.settings import InfiniteTalkSettings
from tests.conftest import mp3_bytes
from tests.fixtures.standin import agent_env
from tests.gpu_agent.conftest import FakeCloud, agent_settings, pulled
from tests.infinitetalk.decodes import count_decodes


def _aac(path: Path) -> tuple[str, int, int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.duration is not None
        seconds = float(stream.duration * stream.time_base)
        context = stream.codec_context
        return context.codec.canonical_name, context.sample_rate, context.channels, seconds


@pytest.mark.parametrize(
    ("rate", "channels", "aac_rate"),
    [(16000, 1, 16000), (44100, 2, 44100), (50000, 1, 48000)],
    ids=["16k-mono", "44k-stereo", "50k-falls-back-to-48k"],
)
def test_the_aac_track_keeps_the_audio_length_rate_and_channels(
    examples: ModuleType, tmp_path: Path, rate: int, channels: int, aac_rate: int
) -> None:
    source = examples.make_speech_wav(
        tmp_path / "s.wav", seconds=1.5, sample_rate=rate, channels=channels
    )
    prepared = prepare_audio(source, tmp_path / "pass")
    assert prepared.info == probe_audio(source)
    codec, sample_rate, layout_channels, seconds = _aac(prepared.aac_path)
    assert (codec, sample_rate, layout_channels) == ("aac", aac_rate, channels)
    assert seconds == pytest.approx(1.5, abs=1e-3)  # the edit list hides AAC's priming


def test_mp3_is_prepared_like_wav(speech_mp3: Path, tmp_path: Path) -> None:
    prepared = prepare_audio(speech_mp3, tmp_path)
    assert prepared.info.codec == "mp3"
    assert _aac(prepared.aac_path)[3] == pytest.approx(prepared.info.duration_seconds, abs=0.03)


def test_loudness_has_one_level_per_video_frame(speech_wav: Path, tmp_path: Path) -> None:
    levels = read_loudness(prepare_audio(speech_wav, tmp_path).loudness_path)
    assert levels.size == round(2.0 / FRAME_SECONDS)
    assert levels.max() > 10 * max(levels.min(), 1e-4)  # speech and pauses differ


def test_only_audio_too_short_for_upstream_gets_a_padded_copy(
    speech_wav: Path, speech_7s: Path, tmp_path: Path
) -> None:
    short = prepare_audio(speech_wav, tmp_path / "short")
    assert short.padded_path is not None
    padded = probe_audio(short.padded_path)
    assert (padded.sample_rate, padded.channels) == (PAD_RATE, 1)
    assert padded.duration_seconds == pytest.approx(PADDED_AUDIO_SECONDS, abs=1e-3)
    assert prepare_audio(speech_7s, tmp_path / "long").padded_path is None


def test_undecodable_audio_is_invalid(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(InvalidInputError):
        prepare_audio(bad, tmp_path / "pass")
    assert not (tmp_path / "pass" / "audio.m4a").exists()


def test_audio_without_samples_leaves_no_aac_track(tmp_path: Path) -> None:
    silent = tmp_path / "s.wav"
    with wave.open(str(silent), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
    with pytest.raises(InvalidInputError, match="holds no decodable audio"):
        prepare_audio(silent, tmp_path / "pass")
    assert not (tmp_path / "pass" / "audio.m4a").exists()


class _FailingDecode:
    """A container that opens fine and fails once decoding starts, like a corrupt file."""

    def __init__(self, container: av.container.InputContainer) -> None:
        self._container = container

    def __getattr__(self, name: str) -> object:
        return getattr(self._container, name)

    def __enter__(self) -> "_FailingDecode":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._container.close()

    def decode(self, *streams: object) -> Iterator[av.AudioFrame]:
        raise av.error.InvalidDataError(-1094995529, "Invalid data found")
        yield  # a generator, like PyAV's


def test_a_decoding_error_midway_makes_the_audio_invalid(
    speech_wav: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **kw: _FailingDecode(real_open(*a, **kw)))
    with pytest.raises(InvalidInputError, match=r"WAV audio cannot be decoded: .*Invalid data"):
        prepare_audio(speech_wav, tmp_path)


# --- one decode per job, through the agent --------------------------------------------


def _run_job(engine: Engine, portrait: Path, audio: Path, work: Path) -> dict[str, object]:
    """One job through the real agent pipeline and media probes; the edge and R2 are fakes."""
    cloud = FakeCloud(
        messages=[pulled()],
        blobs={"/inputs/image.png": portrait.read_bytes(), "/blobs/audio.wav": audio.read_bytes()},
    )
    stop = threading.Event()
    cloud.on_call = lambda call: stop.set() if call.kind in ("complete", "fail") else None
    settings = agent_settings(work)
    assert cli.run_agent(settings, stop, engine=engine, transport=cloud.transport()) == 0
    assert cloud.bodies("fail") == []
    (complete,) = cloud.bodies("complete")
    result: dict[str, object] = complete["result"]
    return result


def _audio_decodes(decodes: dict[str, int]) -> int:
    """Decodes of the job's downloaded audio (the agent names it audio.wav)."""
    return sum(count for path, count in decodes.items() if Path(path).name == "audio.wav")


def test_a_preview_job_decodes_its_audio_once(
    portrait_png: Path, speech_wav: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes = count_decodes(monkeypatch)
    result = _run_job(PreviewEngine(), portrait_png, speech_wav, tmp_path)
    assert result["engine"] == EngineName.PREVIEW.value
    assert _audio_decodes(decodes) == 1


@pytest.mark.parametrize("seconds", [2.0, 4.0], ids=["padded", "two-chunks"])
def test_an_infinitetalk_job_decodes_its_audio_once(
    examples: ModuleType,
    standin_models: Path,
    portrait_png: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seconds: float,
) -> None:
    """Against the stand-in upstream in subprocess mode: its own reading of the audio runs
    in its process; ours is the one pass, whether the audio is padded for upstream or not."""
    audio = examples.make_speech_wav(tmp_path / "speech.wav", seconds=seconds)
    settings = InfiniteTalkSettings.from_env(
        {**agent_env(standin_models), "PATH": os.environ["PATH"]}
    )
    engine = start_infinitetalk(settings)
    decodes = count_decodes(monkeypatch)
    result = _run_job(engine, portrait_png, audio, tmp_path / "work")
    assert result["engine"] == EngineName.INFINITETALK.value
    assert result["duration_seconds"] == pytest.approx(seconds, abs=FRAME_SECONDS)
    assert _audio_decodes(decodes) == 1


def test_audio_longer_than_the_limit_stops_the_decode(tmp_path: Path) -> None:
    """The decoded samples decide: a Xing header that says 10 frames does not hide 20 s."""
    mp3 = bytearray(mp3_bytes(20))
    xing = max(mp3.find(b"Xing"), mp3.find(b"Info"))
    mp3[xing + 8 : xing + 12] = (10).to_bytes(4, "big")
    assert mp3_seconds(bytes(mp3), len(mp3)) < 1
    source = tmp_path / "lying.mp3"
    source.write_bytes(mp3)
    with pytest.raises(InvalidInputError, match="longer than the limit of 5 s") as refused:
        prepare_audio(source, tmp_path / "pass", max_seconds=5)
    assert refused.value.code == FailureCode.AUDIO_TOO_LONG
    assert prepare_audio(source, tmp_path / "ok", max_seconds=21).info.duration_seconds > 19


def test_audio_exactly_as_long_as_the_limit_is_not_over_it() -> None:
    """Ten minutes at 16 kHz come as 9,375 frames of 1,024 samples: summed as float seconds
    they made more than 600 s and refused a 600 s job."""
    limit = LengthLimit(600)
    frame = av.AudioFrame(format="s16", layout="mono", samples=1024)
    frame.sample_rate = 16000
    for _ in range(9375):
        limit(frame)
    limit(None)
    with pytest.raises(InvalidInputError, match="longer than the limit of 600 s"):
        limit(frame)
