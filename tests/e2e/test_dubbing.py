"""Dubbing and two speakers over the live stack with the preview engine: one agent takes a
dubbing job with audio longer than the video and one with audio shorter (sent by the SDK),
a two-speaker job whose faces the agent finds, one whose boxes the SDK sends, and a video
that does not decode."""

import io

import av
import httpx
import numpy as np

from avatar_client import AvatarClient
from tests.conftest import mp4_bytes, two_faces_png, wav_bytes
from tests.e2e.conftest import API_KEY, Stack, terminal, wait_for


def create(client: httpx.Client, files: dict[str, bytes], **data: str) -> str:
    response = client.post(
        "/generate",
        files={name: (name, content) for name, content in files.items()},
        data={"prompt": "Talking", "resolution": "480p", **data},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def frame_levels(client: httpx.Client, job_id: str) -> list[float]:
    """The mean luma of each output frame's top-left corner (away from the face)."""
    url = client.get(f"/result/{job_id}").json()["url"]
    with av.open(io.BytesIO(httpx.get(url).content)) as container:
        return [
            float(np.asarray(frame.to_image().convert("L"))[:8, :8].mean())
            for frame in container.decode(video=0)
        ]


def test_dubbing_and_two_speakers_end_to_end(stack: Stack) -> None:
    stack.start_agent()
    with stack.client() as client, AvatarClient(stack.url, API_KEY) as sdk:
        longer = create(client, {"video": mp4_bytes(1.0), "audio": wav_bytes(2.0, tone_hz=220)})
        shorter = sdk.submit(
            None, wav_bytes(1.0, tone_hz=220), "Talking", resolution="480p", video=mp4_bytes(2.0)
        ).id
        pair = create(
            client,
            {
                "image": two_faces_png(),
                "audio": wav_bytes(1.0, tone_hz=220),
                "audio2": wav_bytes(0.6),
            },
            speaker_mode="sequential",
        )
        given = sdk.submit(
            two_faces_png(),
            wav_bytes(0.6),
            "Talking",
            resolution="480p",
            audio2=wav_bytes(0.6),
            speaker_mode="simultaneous",
            speaker_boxes=[[0, 0, 240, 240], [240, 0, 480, 240]],
        ).id
        broken = create(client, {"video": mp4_bytes(0.2)[:300] + bytes(3000), "audio": wav_bytes()})

        finals = {
            job: wait_for(client, job, terminal) for job in (longer, shorter, pair, given, broken)
        }
        for job in (longer, shorter, pair, given):
            assert finals[job]["status"] == "completed", f"{finals[job]}\n{stack.logs()}"

        # The output follows the audio: the video's last frame is held past its end...
        held = frame_levels(client, longer)
        assert len(held) == 50 and finals[longer]["input_kind"] == "video"
        assert held[0] < held[24] and max(held[25:]) - min(held[25:]) < 1.0
        # ...and a longer video is cut where the audio ends, mid-brightening.
        cut = frame_levels(client, shorter)
        assert len(cut) == 25 and cut[0] < cut[-1]

        # Two speakers one after the other: 1.6 s, the faces the detector found.
        assert len(frame_levels(client, pair)) == 40
        speakers = finals[pair]["speakers"]
        assert (finals[pair]["speaker_mode"], speakers["source"]) == ("sequential", "detected")
        left, right = speakers["boxes"]
        assert left[2] <= 240 <= right[0]
        assert finals[given]["speakers"]["source"] == "given"
        assert len(frame_levels(client, given)) == 15  # at the same time: the longer track

        failed = finals[broken]
        assert (failed["status"], failed["error"]["code"]) == ("failed", "VIDEO_UNDECODABLE")
        assert failed["attempts"] == 1  # a bad input is not retried
