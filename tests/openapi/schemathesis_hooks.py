"""Loaded by Schemathesis (SCHEMATHESIS_HOOKS): real media for the form's file parts, so
createJob succeeds and the stateful phase follows its links to a real job."""

from hypothesis import strategies as st
from schemathesis import openapi

from tests.conftest import png_bytes, wav_bytes

for image_type in ("image/png", "image/jpeg"):
    openapi.media_type(image_type, st.just(png_bytes()))
for audio_type in ("audio/wav", "audio/mpeg"):
    openapi.media_type(audio_type, st.just(wav_bytes()))
