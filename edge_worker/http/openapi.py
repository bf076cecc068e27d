"""What the OpenAPI documents say that Litestar cannot infer from the handlers: the error
envelope of each code, the bodies the handlers read from the raw stream, the headers, the
security of each route and the links between operations (docs/API.md#openapi)."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union

from litestar.enums import ParamType
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Link,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityScheme,
)
from pydantic import BaseModel, Field, create_model

from contracts import ErrorCode
from contracts.errors import ERROR_DETAILS
from edge_worker.domain.validation import PROMPT_MAX_CHARS
from edge_worker.usecases.creation import GenerateFromUploads

CLIENT_SCHEME = "apiKey"
AGENT_SCHEME = "agentToken"
SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    CLIENT_SCHEME: SecurityScheme(
        type="http", scheme="bearer", description="An API key from the edge's `API_KEYS`"
    ),
}
AGENT_SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    AGENT_SCHEME: SecurityScheme(
        type="http", scheme="bearer", description="The edge's `AGENT_TOKEN`; API keys are refused"
    ),
}
COMPONENT_REF = "#/components/schemas/{model}"

_REQUEST_ID_SCHEMA = Schema(type=OpenAPIType.STRING, pattern=r"^[A-Za-z0-9._-]{8,128}$")
REQUEST_ID = Parameter(
    name="X-Request-ID",
    param_in=ParamType.HEADER,
    required=False,
    schema=Schema(type=OpenAPIType.STRING),
    description="Your id for this request: echoed back when it is 8-128 characters of "
    "`A-Za-z0-9._-`, else replaced by one the edge makes.",
)
IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in=ParamType.HEADER,
    required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255, pattern=r"^[ -~]+$"),
    description="Makes retries safe: the same key and request return the same job for 24 h; "
    "a different request with the key is `422 IDEMPOTENCY_KEY_REUSED`.",
)
LAST_EVENT_ID = Parameter(
    name="Last-Event-ID",
    param_in=ParamType.HEADER,
    required=False,
    schema=Schema(type=OpenAPIType.STRING),
    description="The `id` of the last event you received: the stream resumes after it, "
    "without repeating what you have. An id that is not one of ours is ignored.",
)
PREFER_WAIT = Parameter(
    name="Prefer",
    param_in=ParamType.HEADER,
    required=False,
    schema=Schema(type=OpenAPIType.STRING),
    description="`wait=N` (RFC 7240, 1-60 s; more is taken as 60): answer as soon as the "
    "job's status, stage, progress, queue position or ETA differs from when the request "
    "arrived, or after N seconds. A job in a final state is answered at once. Other and "
    "malformed preferences are ignored, as RFC 7240 asks.",
)
PREFERENCE_APPLIED = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING, pattern=r"^wait=[0-9]+$"),
    description="`wait=N`: the wait that was honoured (present only when one was asked).",
)
_RESPONSE_REQUEST_ID = OpenAPIHeader(
    schema=_REQUEST_ID_SCHEMA,
    required=True,
    description="The request's id (yours when well-formed): quote it when reporting a problem.",
)
_RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    description="Seconds to wait before retrying.",
)
RETRY_AFTER_STATUSES = frozenset({429, 503})

JOB_ID_LINKS = {
    name: Link(
        operation_id=operation_id,
        parameters={"job_id": "$response.body#/job_id"},
        description=description,
    )
    for name, operation_id, description in (
        ("GetJobStatus", "getJobStatus", "Poll the job just created"),
        ("GetJobResult", "getJobResult", "Fetch its video once it is completed"),
        ("CancelJob", "cancelJob", "Cancel it while it is pending or processing"),
    )
}

_ERROR_MEANINGS: Mapping[ErrorCode, str] = {
    ErrorCode.UNAUTHORIZED: "no key, or a wrong one",
    ErrorCode.INVALID_INPUT: "a missing or malformed field, parameter or body",
    ErrorCode.UNSUPPORTED_MEDIA: "the image is not PNG/JPEG, the audio not WAV/MP3 or the "
    "video not MP4/MOV/WebM",
    ErrorCode.PAYLOAD_TOO_LARGE: "a file or the body is over its limit",
    ErrorCode.AUDIO_TOO_LONG: "the audio's headers declare more than MAX_AUDIO_SECONDS",
    ErrorCode.IMAGE_TOO_LARGE: "the image's header declares more than MAX_IMAGE_PIXELS",
    ErrorCode.JOB_NOT_FOUND: "no such job for this key",
    ErrorCode.RESULT_NOT_READY: "the job has not completed",
    ErrorCode.RESULT_EXPIRED: "the video was deleted after its retention period",
    ErrorCode.NOT_FOUND: "no such route",
    ErrorCode.METHOD_NOT_ALLOWED: "the route does not take this method",
    ErrorCode.CONFLICT: "the request collides with the job's state or a concurrent request",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "the Idempotency-Key was used for a different request",
    ErrorCode.RATE_LIMITED: "too many requests",
    ErrorCode.REQUEST_TIMEOUT: "the request body stalled (local edge)",
    ErrorCode.STORAGE_ERROR: "storage is unavailable",
    ErrorCode.INTERNAL_ERROR: "an unexpected failure; the edge's logs have the details",
    ErrorCode.VIDEO_TOO_LONG: "the video's header declares more than MAX_VIDEO_SECONDS",
    ErrorCode.TWO_SPEAKERS_UNSUPPORTED: "audio2 with a video, or with a portrait-format "
    "image and no speaker_boxes",
    ErrorCode.SPEAKER_BOXES_INVALID: "a speaker box leaves the image, or the two overlap by "
    "more than half of the smaller",
    ErrorCode.MISSING_CAPABILITY: "the agent cannot make this job (video, two speakers); "
    "hand the message back",
}


def _variant_name(code: ErrorCode) -> str:
    """`JobNotFoundError` for `JOB_NOT_FOUND`, `InternalError` for `INTERNAL_ERROR`."""
    name = "".join(word.title() for word in code.value.split("_"))
    return name if name.endswith("Error") else f"{name}Error"


def _error_variant(code: ErrorCode) -> type[BaseModel]:
    code_type: Any = Literal[(code,)]
    model: type[BaseModel] = create_model(
        _variant_name(code),
        __doc__=f"`{code.value}` ({code.http_status}): {_ERROR_MEANINGS[code]}.",
        code=(code_type, ...),
        message=(str, ...),
        details=(ERROR_DETAILS[code], ...),
    )
    return model


_ERROR_VARIANTS = tuple(_error_variant(code) for code in ErrorCode)


_ERROR_BODY: Any = Annotated[Union[_ERROR_VARIANTS], Field(discriminator="code")]  # noqa: UP007
ErrorEnvelope: type[BaseModel] = create_model(
    "ErrorEnvelope",
    __doc__="Every error the edge sends: `error.code` says which, and what `details` holds.",
    error=(_ERROR_BODY, ...),
)


def error_responses(codes: Iterable[ErrorCode]) -> dict[int, ResponseSpec]:
    """One response per status among `codes`, each the envelope, naming its codes."""
    by_status: dict[int, list[ErrorCode]] = {}
    for code in codes:
        by_status.setdefault(code.http_status, []).append(code)
    return {
        status: ResponseSpec(
            data_container=ErrorEnvelope,
            generate_examples=False,
            description="; ".join(f"`{code.value}`: {_ERROR_MEANINGS[code]}" for code in group),
        )
        for status, group in sorted(by_status.items())
    }


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema, its enums referring to the components Litestar registered."""
    schema = model.model_json_schema(ref_template=COMPONENT_REF)
    schema.pop("$defs", None)
    return schema


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON field's schema without its null branch, as a form field (which has no null)."""
    branches = schema.get("anyOf")
    if branches is None:
        return schema
    kept = [branch for branch in branches if branch.get("type") != "null"]
    rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
    return {**rest, **kept[0]} if len(kept) == 1 else schema


def _generate_bodies() -> dict[str, Any]:
    """`POST /generate`'s two bodies: a form with files or upload ids, or JSON with ids."""
    json_schema = _model_schema(GenerateFromUploads)
    fields = json_schema["properties"]
    fields["prompt"] = {
        **fields["prompt"],
        "pattern": r"\S",
        "description": f"{PROMPT_MAX_CHARS} characters at most once trimmed, not blank",
    }
    form = {
        "type": "object",
        "properties": {
            "image": {
                "type": "string",
                "format": "binary",
                "description": "PNG or JPEG (judged by content); or send `image_upload_id`",
            },
            "audio": {
                "type": "string",
                "format": "binary",
                "description": "WAV or MP3 (judged by content), any length; or send "
                "`audio_upload_id`",
            },
            "video": {
                "type": "string",
                "format": "binary",
                "description": "MP4, MOV or WebM to dub, instead of `image`; or send "
                "`video_upload_id`",
            },
            "audio2": {
                "type": "string",
                "format": "binary",
                "description": "a second speaker's WAV or MP3; or send `audio2_upload_id`",
            },
            # A form has no null: leave a field out for its default (`seed`: a random one).
            **{name: _not_null(schema) for name, schema in fields.items()},
            "speaker_boxes": {
                "type": "string",
                "description": "with audio2: JSON `[[x1, y1, x2, y2], [x1, y1, x2, y2]]` in the "
                "image's pixels",
            },
        },
        "required": ["prompt"],
        "additionalProperties": False,
        "description": "Each of the image and the audio as a file part or as the id of an "
        "upload from `POST /uploads`, mixed freely.",
    }
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": form,
                "encoding": {
                    "image": {"contentType": "image/png, image/jpeg"},
                    "audio": {"contentType": "audio/wav, audio/mpeg"},
                    "video": {"contentType": "video/mp4, video/quicktime, video/webm"},
                    "audio2": {"contentType": "audio/wav, audio/mpeg"},
                },
            },
            "application/json": {"schema": json_schema},
        },
    }


@dataclass
class DocumentedOperation(Operation):
    """An operation with what every one of ours has: `X-Request-ID` both ways, `Retry-After`
    where it applies, and no responses but its success and its declared errors."""

    statuses: ClassVar[frozenset[int]] = frozenset()
    headers: ClassVar[Sequence[Parameter]] = ()
    success_links: ClassVar[Mapping[str, Link]] = {}
    success_headers: ClassVar[Mapping[str, OpenAPIHeader]] = {}
    request_body_schema: ClassVar[Mapping[str, Any] | None] = None

    def __post_init__(self) -> None:
        self.parameters = [*(self.parameters or []), *self.headers, REQUEST_ID]
        responses: dict[str, OpenAPIResponse | Reference] = {}
        for status, response in (self.responses or {}).items():
            code = int(status)
            if code >= 400 and code not in self.statuses:
                continue  # Litestar's own 400 body, which the edge never sends
            if isinstance(response, OpenAPIResponse):
                response.headers = {"X-Request-ID": _RESPONSE_REQUEST_ID}
                if code in RETRY_AFTER_STATUSES:
                    response.headers["Retry-After"] = _RETRY_AFTER
                if code < 400 and self.success_links:
                    response.links = dict(self.success_links)
                if code < 400:
                    response.headers.update(self.success_headers)
            responses[status] = response
        self.responses = responses

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        if self.request_body_schema is not None:
            schema["requestBody"] = dict(self.request_body_schema)
        return schema


def documented(
    operation_id: str,
    errors: Iterable[ErrorCode],
    *,
    scheme: str | None = CLIENT_SCHEME,
    headers: Sequence[Parameter] = (),
    success_links: Mapping[str, Link] | None = None,
    request_body: Mapping[str, Any] | None = None,
    responses: Mapping[int, ResponseSpec] | None = None,
    success_headers: Mapping[str, OpenAPIHeader] | None = None,
) -> dict[str, Any]:
    """The route decorator's OpenAPI arguments for one operation, of either document.

    `scheme`: the bearer scheme it needs (`CLIENT_SCHEME`, `AGENT_SCHEME`), None if public;
    `responses`: those other than its success and its error envelopes; `success_headers`:
    response headers of its success besides `X-Request-ID`."""
    codes = [*errors, ErrorCode.INTERNAL_ERROR]
    if scheme is not None:
        codes.append(ErrorCode.UNAUTHORIZED)
    operation_class = type(
        f"{operation_id[0].upper()}{operation_id[1:]}Operation",
        (DocumentedOperation,),
        {
            "statuses": frozenset({*(code.http_status for code in codes), *(responses or {})}),
            "headers": tuple(headers),
            "success_links": dict(success_links or {}),
            "success_headers": dict(success_headers or {}),
            "request_body_schema": request_body,
        },
    )
    return {
        "operation_id": operation_id,
        "responses": {**error_responses(codes), **(responses or {})},
        "operation_class": dataclass(operation_class),
        "security": None if scheme is None else [{scheme: []}],
    }


GENERATE_BODY = _generate_bodies()
