"""The media probes, loaded lazily from `infinitetalk.media`."""

from __future__ import annotations

import types

from gpu_agent.probes import MediaProbes


def test_default_probes_come_from_infinitetalk_media(fake_media: types.ModuleType) -> None:
    media = fake_media
    assert MediaProbes.default() == MediaProbes(
        media.probe_image, media.prepare_audio, media.probe_video
    )
