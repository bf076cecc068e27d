"""`create_engine("infinitetalk")`: profile, refusal with reasons, the mode's engine."""

import logging
from pathlib import Path

import pytest

from contracts import Quality
from infinitetalk.factory import create_engine, start_infinitetalk
from infinitetalk.preview.engine import PreviewEngine
from infinitetalk.settings import InfiniteTalkSettings, MemoryProfile, Mode, Quantization
from infinitetalk.upstream.engine import UpstreamEngine
from infinitetalk.upstream.preflight import EngineStartError
from infinitetalk.upstream.profiles import GIB, HostInfo
from infinitetalk.upstream.subprocess_mode import SubprocessBackend
from tests.fixtures.standin import STANDIN_DIR


def test_preview_needs_no_infinitetalk_settings() -> None:
    assert isinstance(create_engine("preview"), PreviewEngine)


def test_infinitetalk_measures_only_when_a_setting_is_auto(
    standin_models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    measured: list[bool] = []

    def measure() -> HostInfo:
        measured.append(True)
        return HostInfo(gpu_name="NVIDIA L40S", vram_bytes=45 * GIB, host_ram_bytes=64 * GIB)

    settings = InfiniteTalkSettings(
        mode=Mode.SUBPROCESS, upstream_dir=STANDIN_DIR, model_storage_path=standin_models
    )
    with caplog.at_level(logging.INFO):
        engine = start_infinitetalk(settings, measure=measure)
    assert isinstance(engine, UpstreamEngine) and measured == [True]
    assert isinstance(engine.backend, SubprocessBackend)
    (configured,) = [r for r in caplog.records if r.getMessage() == "InfiniteTalk configured"]
    assert configured.profile == "balanced"  # type: ignore[attr-defined]
    assert configured.quantization == "fp8"  # type: ignore[attr-defined]  # 64 GiB host RAM
    (no_fast,) = [r for r in caplog.records if r.getMessage().startswith("quality=fast")]
    assert "fp8 quantised model" in no_fast.why  # type: ignore[attr-defined]
    assert engine.quality_unavailable(Quality.FAST) == no_fast.why  # type: ignore[attr-defined]
    explicit = settings.model_copy(
        update={"memory_profile": MemoryProfile.FULL, "quantization": Quantization.NONE}
    )
    caplog.clear()
    with caplog.at_level(logging.INFO):
        bf16 = start_infinitetalk(explicit, measure=measure)
    assert measured == [True]
    assert "quality=fast available" in caplog.messages
    assert bf16.quality_unavailable(Quality.FAST) is None


def test_infinitetalk_refuses_to_start_naming_what_is_missing(tmp_path: Path) -> None:
    settings = InfiniteTalkSettings(upstream_dir=tmp_path, model_storage_path=tmp_path)
    with pytest.raises(EngineStartError) as caught:
        create_engine("infinitetalk", infinitetalk=settings)
    message = str(caught.value)
    assert "has no generate_infinitetalk.py" in message
    assert "missing Wan2.1 VAE" in message


def test_a_checkout_off_the_pin_is_warned_about(
    standin_models: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkout = tmp_path / "it"
    checkout.mkdir()
    (checkout / "generate_infinitetalk.py").touch()
    (checkout / ".git").mkdir()
    (checkout / ".git" / "HEAD").write_text("1" * 40)
    settings = InfiniteTalkSettings(
        upstream_dir=checkout,
        model_storage_path=standin_models,
        memory_profile="lowvram",
        quantization="none",
    )
    start_infinitetalk(settings)
    assert "upstream checkout is not at the pinned commit" in caplog.messages
