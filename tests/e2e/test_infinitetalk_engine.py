"""ENGINE=infinitetalk over real processes: edge, agent, and the stand-in upstream checkout.

The agent is configured exactly as on a pod (INFINITETALK_DIR, MODEL_STORAGE_PATH, ...),
only the checkout is `tests/fixtures/infinitetalk_standin` and the weights are empty files.
"""

from pathlib import Path

import av
import httpx
import pytest

from examples.make_examples import make_speech_wav
from infinitetalk.settings import Quantization
from tests.e2e.conftest import EXAMPLES, Stack, terminal, wait_for
from tests.fixtures.standin import agent_env, make_weights


@pytest.fixture(scope="module")
def speech_7s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "speech-7s.wav"
    return make_speech_wav(path, seconds=7.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_weights(tmp_path_factory.mktemp("models"), Quantization.FP8)


def submit(client: httpx.Client, audio: Path, prompt: str, quality: str = "standard") -> str:
    with (EXAMPLES / "portrait.png").open("rb") as img, audio.open("rb") as wav:
        response = client.post(
            "/generate",
            files={"image": ("portrait.png", img), "audio": (audio.name, wav)},
            data={"prompt": prompt, "resolution": "480p", "quality": quality},
        )
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


def test_subprocess_mode_job_completes_with_chunked_progress(
    stack: Stack, models: Path, speech_7s: Path, tmp_path: Path
) -> None:
    stack.start_agent(
        "infinitetalk", **agent_env(models, "subprocess", STANDIN_STEP_SECONDS="0.25")
    )
    seen: list[dict] = []
    with stack.client() as client:
        job_id = submit(client, speech_7s, "A presenter talking to the camera")
        final = wait_for(client, job_id, terminal, seen=seen)
        assert final["status"] == "completed", f"{final}\n{stack.logs()}"
        assert final["engine"] == "infinitetalk"
        processing = [s for s in seen if s["status"] == "processing"]
        progress = [s["progress"] for s in processing]
        assert progress == sorted(progress)
        generating = {s["progress"] for s in processing if s["stage"] == "generating"}
        assert len(generating) >= 3  # progress within and across the 3 chunks (1 report/s)
        assert any(s["eta_seconds"] for s in processing if s["stage"] == "generating")
        result = client.get(f"/result/{job_id}").json()
        assert (result["width"], result["height"]) == (576, 704)
        out = tmp_path / "out.mp4"
        out.write_bytes(httpx.get(result["url"]).content)
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert sum(1 for _ in container.decode(video)) == 175


def test_resident_agent_keeps_its_model_through_a_failed_job(
    stack: Stack, models: Path, speech_7s: Path
) -> None:
    stack.start_agent("infinitetalk", **agent_env(models, "resident"))
    with stack.client() as client:
        failing = submit(client, speech_7s, "A presenter [standin:oom]")
        failed = wait_for(client, failing, terminal)
        assert failed["status"] == "failed", f"{failed}\n{stack.logs()}"
        assert failed["error"]["code"] == "GPU_OUT_OF_MEMORY"
        assert "standin" not in failed["error"]["message"]
        job_id = submit(client, speech_7s, "A presenter talking")
        final = wait_for(client, job_id, terminal)
        assert final["status"] == "completed", f"{final}\n{stack.logs()}"
    log = (stack.log_dir / "agent-0.log").read_text()
    assert log.count('"msg":"model worker started"') == 1  # loaded once, never reloaded
    assert '"msg":"model loaded"' in log


def test_a_resident_agent_switches_the_fast_lora_between_jobs(
    stack: Stack, models: Path, speech_7s: Path
) -> None:
    stack.start_agent("infinitetalk", **agent_env(models, "resident"))
    with stack.client() as client:
        for quality in ("fast", "standard"):
            job_id = submit(client, speech_7s, "A presenter talking", quality)
            final = wait_for(client, job_id, terminal)
            assert final["status"] == "completed", f"{final}\n{stack.logs()}"
            assert final["quality"] == quality
    log = (stack.log_dir / "agent-0.log").read_text()
    assert log.count('"msg":"model worker started"') == 1
    assert '"msg":"fast LoRA merged into the DiT"' in log
    assert '"msg":"fast LoRA taken out of the DiT"' in log


def test_an_agent_that_cannot_make_fast_fails_such_jobs_at_once(
    stack: Stack, models: Path, speech_7s: Path
) -> None:
    stack.start_agent("infinitetalk", **agent_env(models, "subprocess", INFINITETALK_QUANT="fp8"))
    with stack.client() as client:
        fast = wait_for(client, submit(client, speech_7s, "A presenter", "fast"), terminal)
        assert fast["status"] == "failed", f"{fast}\n{stack.logs()}"
        assert fast["error"] == {
            "code": "QUALITY_UNAVAILABLE",
            "message": "quality=fast is not available: this agent runs the fp8 quantised "
            "model, on which upstream ignores LoRA (INFINITETALK_QUANT=fp8); "
            "submit with quality=standard",
        }
        assert fast["attempts"] == 1  # not retried: every attempt would fail the same way
        standard = wait_for(client, submit(client, speech_7s, "A presenter"), terminal)
        assert standard["status"] == "completed", f"{standard}\n{stack.logs()}"
