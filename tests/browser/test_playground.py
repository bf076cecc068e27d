"""The playground in Debian's Chromium, driven by Playwright, against the live local stack
with a preview agent: a key pasted, a portrait and a speech file chosen, the job followed on
its SSE stream to the end, the MP4 decoded by the browser's own <video>, and not one request
to another origin. The stack's inline cap is set below the two files together, so the page
sends the larger one through POST /uploads and its signed PUT URL, and the other inline.

A second test makes a two-speaker job (its three files all through /uploads, so the job is
created with JSON) and a dubbing job from a video, with the second speaker's controls
disabled while a video is chosen.

One browser launch for the whole file; the microphone is Chromium's fake device, so the
recording path (MediaRecorder, AudioContext, the page's WAV encoder) runs too. Leaves
.avatar/playground.png.
"""

import base64
import io
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

from contracts.media import WAV, sniff, wav_truncation
from tests.conftest import mp4_bytes, png_bytes, two_faces_png, wav_bytes
from tests.e2e.conftest import API_KEY, ROOT, Stack

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: scripts/ensure_chromium.sh
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # a microphone that plays a tone, granted without a prompt
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
SCREENSHOT = ROOT / ".avatar" / "playground.png"
IMAGE = png_bytes((240, 300))
AUDIO = wav_bytes(seconds=2.0, tone_hz=220)
# Over the image with its form, under both files: only the audio goes through /uploads.
INLINE_CAP = len(IMAGE) + 16 * 1024
JOB_TIMEOUT_MS = 45_000
PICTURE = "Portrait or video to dub"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "run scripts/ensure_chromium.sh (make test does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    running = stack_factory(MAX_INLINE_REQUEST_BYTES=str(INLINE_CAP))
    running.start_agent("preview")
    return running


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    image, audio = tmp_path / "portrait.png", tmp_path / "speech.wav"
    image.write_bytes(IMAGE)
    audio.write_bytes(AUDIO)
    assert len(IMAGE) < INLINE_CAP < len(IMAGE) + len(AUDIO)
    return image, audio


# A function, not an expression: Playwright evaluates expressions with eval(), which the
# page's Content-Security-Policy (in force here) refuses.
ready_state = "state => document.getElementById('job-video').readyState >= state"


def recorded_wav(page: Page) -> bytes:
    """The file the page put in the audio input, as bytes."""
    encoded = page.evaluate(
        """async () => {
            const file = document.getElementById("audio").files[0];
            const bytes = new Uint8Array(await file.arrayBuffer());
            let text = "";
            for (const byte of bytes) text += String.fromCharCode(byte);
            return btoa(text);
        }"""
    )
    return base64.b64decode(encoded)


def test_a_video_made_in_the_playground_plays_in_chromium(
    browser: Browser, stack: Stack, inputs: tuple[Path, Path]
) -> None:
    image, audio = inputs
    page = browser.new_page(viewport={"width": 1100, "height": 1250})
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))

    page.goto(f"{stack.url}/")
    assert page.url == f"{stack.url}/playground"
    page.get_by_label("Your key").fill(API_KEY)
    page.get_by_label(PICTURE).set_input_files(image)
    page.get_by_label("Speech").set_input_files(audio)
    page.get_by_label("Prompt").fill("A friendly presenter talking to the camera")
    page.get_by_label("Resolution").select_option("480p")
    page.get_by_label("Quality").select_option("fast")
    page.get_by_role("button", name="Generate").press("Enter")  # the keyboard, no mouse

    expect(page.locator("#job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    job_id = page.locator("#job-id").inner_text()
    page.wait_for_function(ready_state, arg=2)
    video = page.locator("#job-video")
    assert video.evaluate("v => [v.videoWidth, v.videoHeight]") == [480, 600]
    download = page.get_by_role("link", name="Download MP4")
    assert download.get_attribute("href") == video.get_attribute("src")
    assert download.get_attribute("download") == f"{job_id}.mp4"
    expect(page.locator("#job-progress")).to_have_attribute("value", "100")
    recent = page.locator(f'#recent button[data-job="{job_id}"]')
    expect(recent).to_contain_text("completed")
    expect(recent).to_have_attribute("aria-current", "true")

    with stack.client() as api:
        job = api.get(f"/status/{job_id}").json()
    assert (job["status"], job["resolution"], job["quality"]) == ("completed", "480p", "fast")
    assert job["result_url"] == video.get_attribute("src")

    calls = [(r.method, urlsplit(r.url).path) for r in requests]
    assert ("POST", "/uploads") in calls and ("POST", "/generate") in calls
    puts = [path for method, path in calls if method == "PUT"]
    assert len(puts) == 1 and puts[0].startswith("/blobs/"), puts  # the audio's signed URL
    grant = next(r for r in requests if r.method == "POST" and r.url.endswith("/uploads"))
    assert grant.post_data_json == {
        "audio": {"content_type": "audio/wav", "size_bytes": len(AUDIO)}
    }
    # multipart, and under the inline cap that both files together exceed: the image alone
    generate = next(r for r in requests if r.method == "POST" and r.url.endswith("/generate"))
    assert "multipart/form-data" in (generate.headers.get("content-type") or "")
    assert ("GET", f"/jobs/{job_id}/events") in calls
    assert not any(path.startswith("/status/") for _, path in calls), "the page polled"
    foreign = {
        r.url
        for r in requests
        if urlsplit(r.url).scheme not in ("data", "blob") and not r.url.startswith(f"{stack.url}/")
    }
    assert foreign == set()

    page.wait_for_function(ready_state, arg=4)  # a still frame for the screenshot
    video.evaluate("v => new Promise(done => { v.onseeked = done; v.currentTime = 1; })")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    record = page.get_by_role("button", name="Record from the microphone")
    record.press("Enter")
    expect(page.get_by_role("button", name="Stop recording")).to_be_visible()
    page.wait_for_timeout(1200)
    page.get_by_role("button", name="Stop recording").press("Enter")
    expect(page.locator("#audio-name")).to_contain_text("recording.wav")
    wav = recorded_wav(page)
    assert sniff(wav[:64]) is WAV and wav_truncation(wav, len(wav)) is None
    with wave.open(io.BytesIO(wav)) as decoded:
        assert (decoded.getnchannels(), decoded.getsampwidth()) == (1, 2)
        assert decoded.getnframes() / decoded.getframerate() > 0.8
    assert failures == []
    page.close()


def open_playground(browser: Browser, stack: Stack) -> Page:
    page = browser.new_page(viewport={"width": 1100, "height": 1250})
    page.goto(f"{stack.url}/playground")
    page.get_by_label("Your key").fill(API_KEY)
    page.get_by_label("Prompt").fill("Talking")
    page.get_by_label("Resolution").select_option("480p")
    page.get_by_label("Quality").select_option("fast")
    return page


def generate(page: Page) -> str:
    """Submits the form from the keyboard and waits for the new job to complete: its id."""
    shown = page.locator("#job-id").text_content()
    page.get_by_role("button", name="Generate").press("Enter")
    expect(page.locator("#job-id")).not_to_have_text(shown or "")
    expect(page.locator("#job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    return page.locator("#job-id").inner_text()


def test_two_speakers_and_dubbing_in_the_playground(
    browser: Browser, stack: Stack, tmp_path: Path
) -> None:
    files = {
        "two.png": two_faces_png(),
        "left.wav": wav_bytes(1.0, tone_hz=220),
        "right.wav": wav_bytes(0.6),
        "clip.mp4": mp4_bytes(1.0),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    page = open_playground(browser, stack)
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    second = page.get_by_role("group", name="Second speaker")

    page.get_by_label(PICTURE).set_input_files(tmp_path / "two.png")
    page.get_by_label("Speech").set_input_files(tmp_path / "left.wav")
    expect(page.get_by_label("Speakers")).to_be_hidden()  # until a second track is chosen
    page.get_by_label("Second speaker's track").set_input_files(tmp_path / "right.wav")
    page.get_by_label("Speakers").select_option("simultaneous")
    page.get_by_label("Boxes").fill("[[0, 0, 240")  # refused before anything is sent
    page.get_by_role("button", name="Generate").press("Enter")
    expect(page.locator("#form-error")).to_contain_text("INVALID_INPUT Boxes must be JSON")
    assert not [r for r in requests if r.method == "POST"]
    page.get_by_label("Boxes").fill("")  # the agent finds the faces
    pair = generate(page)
    expect(page.locator("#job-input")).to_have_text("image")
    expect(page.locator("#job-speakers")).to_have_text("two, simultaneous")
    expect(page.locator("#job-boxes")).to_contain_text("Where each speaker is: detected")
    with stack.client() as api:
        job = api.get(f"/status/{pair}").json()
    assert (job["speaker_mode"], job["speakers"]["source"]) == ("simultaneous", "detected")
    left, right = (", ".join(map(str, box)) for box in job["speakers"]["boxes"])
    expect(page.locator("#job-boxes")).to_contain_text(f"audio at [{left}], audio2 at [{right}]")
    grant = next(r for r in requests if r.method == "POST" and r.url.endswith("/uploads"))
    assert sorted(grant.post_data_json) == ["audio", "audio2", "image"]  # each over the cap
    created = next(r for r in requests if r.method == "POST" and r.url.endswith("/generate"))
    body = created.post_data_json
    assert {"image_upload_id", "audio_upload_id", "audio2_upload_id"} <= body.keys()
    assert body["speaker_mode"] == "simultaneous"

    requests.clear()
    page.get_by_label(PICTURE).set_input_files(tmp_path / "clip.mp4")
    expect(second).to_have_attribute("disabled", "")
    for control in ("Second speaker's track", "Speakers", "Boxes"):
        expect(page.get_by_label(control)).to_be_disabled()
    expect(second).to_contain_text("A video to dub has one speaker")
    expect(page.locator("#video-preview")).to_be_visible()
    expect(page.locator("#image-preview")).to_be_hidden()
    dubbed = generate(page)
    expect(page.locator("#job-input")).to_have_text("video (dubbing)")
    expect(page.locator("#job-speakers")).to_have_text("one")
    page.wait_for_function(ready_state, arg=4)
    with stack.client() as api:
        job = api.get(f"/status/{dubbed}").json()
    assert (job["input_kind"], job["speaker_mode"]) == ("video", None)  # audio2 left out
    grant = next(r for r in requests if r.method == "POST" and r.url.endswith("/uploads"))
    assert grant.post_data_json == {
        "audio": {"content_type": "audio/wav", "size_bytes": len(files["left.wav"])}
    }
    created = next(r for r in requests if r.method == "POST" and r.url.endswith("/generate"))
    assert "multipart/form-data" in (created.headers.get("content-type") or "")  # video inline
    assert failures == []
    page.close()
