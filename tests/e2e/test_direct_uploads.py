"""Large files skip the edge: /uploads -> PUT to storage -> JSON /generate -> completed."""

from pathlib import Path
from urllib.parse import urlsplit

import httpx

from contracts.media import MiB
from tests.e2e.conftest import EXAMPLES, Stack, terminal, wait_for
from tests.e2e.test_sdk_large_audio import wav_of_size


def put_file(url: str, headers: dict[str, str], path: Path) -> None:
    with path.open("rb") as f:
        response = httpx.put(
            url,
            content=f,
            headers={**headers, "Content-Length": str(path.stat().st_size)},
            timeout=120,
        )
    assert response.status_code == 200, response.text


def upload_and_generate(
    client: httpx.Client, image: Path, audio: Path, prompt: str
) -> tuple[dict, httpx.Response]:
    """The grants, and the answer of JSON /generate once both files are PUT."""
    grants = client.post(
        "/uploads",
        json={
            "image": {"content_type": "image/png", "size_bytes": image.stat().st_size},
            "audio": {"content_type": "audio/wav", "size_bytes": audio.stat().st_size},
        },
    ).json()
    put_file(grants["image"]["url"], grants["image"]["headers"], image)
    put_file(grants["audio"]["url"], grants["audio"]["headers"], audio)
    created = client.post(
        "/generate",
        json={
            "image_upload_id": grants["image"]["upload_id"],
            "audio_upload_id": grants["audio"]["upload_id"],
            "prompt": prompt,
            "resolution": "480p",
        },
    )
    return grants, created


def test_a_40_mib_wav_through_uploads_becomes_a_completed_job(stack: Stack, tmp_path: Path) -> None:
    # The most bytes per second the engine takes: 40 MiB is about 7 s, so the job stays cheap.
    audio = tmp_path / "long.wav"
    result_seconds = wav_of_size(audio, 40 * MiB)
    image = EXAMPLES / "portrait.png"
    stack.start_agent()
    with stack.client() as client:
        _, created = upload_and_generate(client, image, audio, "A long talk")
        assert created.status_code == 200, created.text
        final = wait_for(client, created.json()["job_id"], terminal, timeout=300)
    assert final["status"] == "completed", f"{final}\n{stack.logs()}"
    with stack.client() as client:
        result = client.get(f"/result/{final['job_id']}").json()
    assert abs(result["duration_seconds"] - result_seconds) < 0.1


def test_an_upload_swapped_after_generate_is_refused(stack: Stack, tmp_path: Path) -> None:
    """Swapping an input after /generate, on a real stack: a second PUT through the same link
    is refused; bytes replaced behind the edge's back are refused by the agent with
    INPUT_CHANGED."""
    image = EXAMPLES / "portrait.png"
    audio = tmp_path / "short.wav"
    wav_of_size(audio, 64 * 1024)
    with stack.client() as client:
        grants, created = upload_and_generate(client, image, audio, "A short talk")
        assert created.status_code == 200, created.text
        swapped = audio.read_bytes()[:-4] + b"\x7f\x7f\x7f\x7f"
        again = httpx.put(
            grants["audio"]["url"], content=swapped, headers=grants["audio"]["headers"]
        )
        assert (again.status_code, again.json()["error"]["code"]) == (409, "CONFLICT")
        key = urlsplit(grants["audio"]["url"]).path.removeprefix("/blobs/")
        stored = stack.data_dir / "blobs" / key
        stored.with_name("swapped").write_bytes(swapped)
        stored.with_name("swapped").replace(stored)  # as a store writes: a new file
        stack.start_agent()
        final = wait_for(client, created.json()["job_id"], terminal, timeout=120)
    assert final["status"] == "failed", f"{final}\n{stack.logs()}"
    assert final["error"]["code"] == "INPUT_CHANGED"
