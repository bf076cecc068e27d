"""The API's calls as data (method, URL, headers, a body made afresh per attempt) and the
parsing of their answers, shared by the sync and the async client."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from avatar_client.errors import ConnectionFailed, InvalidResponse
from avatar_client.inputs import Media
from avatar_client.uploads import UploadGrant, UploadGrants
from contracts import JobList, JobStatus, JobView, Quality, Resolution, SpeakerMode
from contracts.webhooks import WebhookEventType

IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "avatar-client/0.1"
MAX_PAGE_SIZE = 100
_M = TypeVar("_M", bound=BaseModel)
BodyFactory = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Call:
    """One request, repeatable: `body()` returns httpx keyword arguments for each attempt,
    so file parts and streams start again from their first byte on a retry."""

    method: str
    url: str
    auth: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    body: BodyFactory = dict
    # Refusals that, after a try whose answer was lost, say that try got through.
    done_if_lost: frozenset[int] = frozenset()

    def build(self, http: httpx.Client | httpx.AsyncClient, api_key: str) -> httpx.Request:
        headers = dict(self.headers)
        if self.auth:
            headers["Authorization"] = f"Bearer {api_key}"
        return http.build_request(self.method, self.url, headers=headers, **self.body())


@dataclass(frozen=True)
class SubmitOptions:
    prompt: str
    resolution: Resolution | str | None = None
    seed: int | None = None
    quality: Quality | str | None = None
    parallel: str | int | None = None
    webhook_url: str | None = None
    webhook_events: Sequence[WebhookEventType | str] | None = None
    speaker_mode: SpeakerMode | str | None = None
    speaker_boxes: Sequence[Sequence[int]] | None = None

    def fields(self) -> dict[str, str | list[str]]:
        """The optional settings the caller gave, as the form and the JSON body name them
        (a list is a form field sent once per item; a form carries the speakers' boxes as
        JSON text)."""
        fields: dict[str, str | list[str]] = {"prompt": self.prompt}
        if self.resolution is not None:
            fields["resolution"] = str(self.resolution)
        if self.seed is not None:
            fields["seed"] = str(self.seed)
        if self.quality is not None:
            fields["quality"] = str(self.quality)
        if self.parallel is not None:
            fields["parallel"] = str(self.parallel)
        if self.webhook_url is not None:
            fields["webhook_url"] = self.webhook_url
        if self.webhook_events is not None:
            fields["webhook_events"] = [str(event) for event in self.webhook_events]
        if self.speaker_mode is not None:
            fields["speaker_mode"] = str(self.speaker_mode)
        if self.speaker_boxes is not None:
            fields["speaker_boxes"] = json.dumps([list(box) for box in self.speaker_boxes])
        return fields

    def json_body(self, grants: UploadGrants, files: list[Media]) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self.fields(),
            **{f"{media.field}_upload_id": grants.of(media).upload_id for media in files},
        }
        if self.seed is not None:
            body["seed"] = self.seed
        if isinstance(self.parallel, int):
            body["parallel"] = self.parallel
        if self.speaker_boxes is not None:
            body["speaker_boxes"] = [list(box) for box in self.speaker_boxes]
        return body


class Api:
    """Builds the calls of one server's public API (docs/API.md)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def absolute(self, url: str) -> str:
        """A result URL as given, or joined to the server when it is relative."""
        return url if "://" in url else self.url("/" + url.lstrip("/"))

    def health(self) -> Call:
        return Call("GET", self.url("/health"), auth=False)

    def status(self, job_id: str) -> Call:
        return Call("GET", self.url(f"/status/{quote(job_id, safe='')}"))

    def result(self, job_id: str) -> Call:
        return Call("GET", self.url(f"/result/{quote(job_id, safe='')}"))

    def events(self, job_id: str, headers: dict[str, str]) -> Call:
        return Call("GET", self.url(f"/jobs/{quote(job_id, safe='')}/events"), headers=headers)

    def cancel(self, job_id: str) -> Call:
        return Call("DELETE", self.url(f"/jobs/{quote(job_id, safe='')}"))

    def jobs(self, statuses: Sequence[str], page_size: int, cursor: str | None) -> Call:
        params: dict[str, str | int] = {"limit": page_size}
        if statuses:
            params["status"] = ",".join(statuses)
        if cursor is not None:
            params["cursor"] = cursor
        return Call("GET", self.url("/jobs"), body=lambda: {"params": params})

    def usage(self, first: date | str | None, last: date | str | None) -> Call:
        wanted = {"from": first, "to": last}
        params = {name: str(day) for name, day in wanted.items() if day is not None}
        return Call("GET", self.url("/usage"), body=lambda: {"params": params})

    def webhook_secret(self) -> Call:
        return Call("GET", self.url("/webhooks/secret"))

    def rotate_webhook_secret(self) -> Call:
        return Call("POST", self.url("/webhooks/secret/rotate"))

    def webhook_deliveries(self, job_id: str) -> Call:
        return Call("GET", self.url(f"/jobs/{quote(job_id, safe='')}/webhooks"))

    def redeliver_webhook(self, job_id: str) -> Call:
        return Call("POST", self.url(f"/jobs/{quote(job_id, safe='')}/webhooks/redeliver"))

    def generate_form(
        self, options: SubmitOptions, files: list[Media], idempotency_key: str
    ) -> Call:
        def body() -> dict[str, Any]:
            parts = {
                media.field: (media.filename, media.rewind(), media.content_type) for media in files
            }
            return {"data": options.fields(), "files": parts}

        return Call(
            "POST", self.url("/generate"), headers={IDEMPOTENCY_HEADER: idempotency_key}, body=body
        )

    def uploads(self, body: dict[str, Any]) -> Call:
        return Call("POST", self.url("/uploads"), body=lambda: {"json": body})

    def generate_json(
        self, options: SubmitOptions, grants: UploadGrants, files: list[Media], idempotency_key: str
    ) -> Call:
        body = options.json_body(grants, files)
        return Call(
            "POST",
            self.url("/generate"),
            headers={IDEMPOTENCY_HEADER: idempotency_key},
            body=lambda: {"json": body},
        )


class Pages:
    """Walks `GET /jobs` by `next_cursor` until the last page, or until `limit` jobs."""

    def __init__(
        self, status: JobStatus | str | Sequence[JobStatus | str] | None, limit: int | None
    ) -> None:
        if status is None:
            self.statuses: list[str] = []
        elif isinstance(status, str):
            self.statuses = [str(status)]
        else:
            self.statuses = [str(one) for one in status]
        self.remaining = limit
        self.cursor: str | None = None
        self.done = False

    def next_call(self, api: Api) -> Call | None:
        if self.done or (self.remaining is not None and self.remaining <= 0):
            return None
        size = MAX_PAGE_SIZE if self.remaining is None else min(MAX_PAGE_SIZE, self.remaining)
        return api.jobs(self.statuses, size, self.cursor)

    def take(self, page: JobList) -> list[JobView]:
        views = page.jobs if self.remaining is None else page.jobs[: self.remaining]
        if self.remaining is not None:
            self.remaining -= len(views)
        self.cursor = page.next_cursor
        self.done = page.next_cursor is None or not page.jobs
        return views


def fetch(url: str) -> Call:
    """A GET of a URL outside the API (a signed result, an input file): no key is sent."""
    return Call("GET", url, auth=False)


def put(grant: UploadGrant, media: Media, content: Callable[[], object]) -> Call:
    """The PUT of one file to its signed upload URL; `content()` streams it from the start.

    An upload URL writes once, so a retry of a PUT whose answer was lost is refused when
    the first try stored the file: 409 from the local edge, 412 from R2."""
    return Call(
        grant.method,
        grant.url,
        auth=False,
        headers={**grant.headers, "Content-Length": str(media.size)},
        body=lambda: {"content": content()},
        done_if_lost=frozenset({409, 412}),
    )


def broken(url: str, error: httpx.TransportError) -> ConnectionFailed:
    """A transfer that broke after its answer began (a download, a fetched input)."""
    return ConnectionFailed(
        f"transfer from {url} broke: {error or type(error).__name__}", code="CONNECTION_FAILED"
    )


def parse(model: type[_M], response: httpx.Response) -> _M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise invalid_response(response, str(exc)) from exc


def parse_json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise invalid_response(response, str(exc)) from exc
    if not isinstance(body, dict):
        raise invalid_response(response, "not a JSON object")
    return body


def invalid_response(response: httpx.Response, why: str) -> InvalidResponse:
    return InvalidResponse(
        f"unexpected response body from {response.request.url}: {why}",
        status_code=response.status_code,
        code="INVALID_RESPONSE",
    )
