"""Loaded by Schemathesis (SCHEMATHESIS_HOOKS): createJob forms that reach the edge's core,
so createJob succeeds and the stateful phase follows its links to real jobs."""

from dataclasses import replace
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode, openapi
from schemathesis.core.mutations import Mutation, OperatorKind
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi._hypothesis import FormBodyWithContentTypes

from tests.conftest import png_bytes, wav_bytes

FORM = "multipart/form-data"
MEDIA = {"image": png_bytes(), "audio": wav_bytes()}
UPLOAD_IDS = ("image_upload_id", "audio_upload_id")

for image_type in ("image/png", "image/jpeg"):
    openapi.media_type(image_type, st.just(MEDIA["image"]))
for audio_type in ("audio/wav", "audio/mpeg"):
    openapi.media_type(audio_type, st.just(MEDIA["audio"]))


@schemathesis.hook.apply_to(operation_id="createJob")
def map_body(_: Any, body: Any) -> Any:
    """A valid form (Schemathesis hands those over with their parts' content types) gets
    both files and loses its upload ids, which random ids never name. JSON bodies keep
    theirs, so that refusal is still exercised, and invalid forms stay as generated."""
    if not isinstance(body, FormBodyWithContentTypes):
        return body
    kept = {name: value for name, value in body.body.items() if name not in UPLOAD_IDS}
    return replace(body, body={**kept, **MEDIA})


def _reaches_the_edge(mutation: Mutation) -> bool:
    """Whether a form still carries this flaw as sent: a part is text, so a type change
    (5 for "5", {"a": 1} for a prompt) reads as a valid value."""
    return (
        mutation.parameter_location is not ParameterLocation.BODY
        or mutation.operator is not OperatorKind.CHANGE_TYPE
    )


@schemathesis.hook.apply_to(operation_id="createJob")
def filter_case(_: Any, case: schemathesis.Case) -> bool:
    """Drops an invalid form none of whose flaws survives being sent as a form."""
    meta = case.meta
    if meta is None or meta.generation.mode is not GenerationMode.NEGATIVE:
        return True
    if case.media_type != FORM:
        return True
    mutations = meta.phase.data.mutations
    return not mutations or any(_reaches_the_edge(mutation) for mutation in mutations)
