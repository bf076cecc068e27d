"""`AvatarClient`: the synchronous client. Its rules live in the shared modules
(calls, retry, uploads, inputs, polling); this module only does the I/O."""

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from avatar_client import calls, events, uploads
from avatar_client.calls import Api, Call, SubmitOptions
from avatar_client.config import resolve_api_key, resolve_url
from avatar_client.errors import (
    AvatarError,
    ConnectionFailed,
    JobFailed,
    PayloadTooLarge,
    error_from_response,
)
from avatar_client.inputs import (
    CHUNK_BYTES,
    Media,
    MediaSource,
    Spool,
    is_url,
    job_inputs,
    open_media,
)
from avatar_client.models import Destination, Job, JobHandle, Result
from avatar_client.polling import DEFAULT_POLL_INTERVAL, Deadline
from avatar_client.retry import Retries, RetryPolicy
from avatar_client.uploads import ServerLimits, UploadGrants
from contracts import JobList, JobStatus, JobView, Quality, Resolution, SpeakerMode, UsageReport
from contracts.media import MediaKind
from contracts.webhooks import (
    WebhookDeliveries,
    WebhookEventType,
    WebhookEventView,
    WebhookSecret,
)

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class AvatarClient:
    """Client of the avatar API; reuse one per process (it keeps a connection pool and the
    server's limits).

    `url` defaults to `AVATAR_URL`, then the local edge; `api_key` to `AVATAR_API_KEY`, then,
    for a local edge only, the key `avatar dev` keeps (docs/CLIENT.md). `env` replaces
    `os.environ` for that lookup. An injected `http` client is not closed here; give it no
    default auth, since signed URLs must never receive the key. `sleep` and `clock` let tests
    run the retries and the polling without waiting.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        http: httpx.Client | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if env is None else env
        self.url = resolve_url(url, env)
        self._api_key = resolve_api_key(api_key, env, self.url, Path.cwd())
        self._api = Api(self.url)
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout, headers={"User-Agent": calls.USER_AGENT})
        self._retry = retry or RetryPolicy()
        self._poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock
        self._limits: ServerLimits | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def health(self) -> dict[str, Any]:
        return calls.parse_json(self._send(self._api.health()))

    def run(
        self,
        image: MediaSource | None,
        audio: MediaSource,
        prompt: str,
        *,
        resolution: Resolution | str | None = None,
        seed: int | None = None,
        quality: Quality | str | None = None,
        parallel: str | int | None = None,
        webhook_url: str | None = None,
        webhook_events: Sequence[WebhookEventType | str] | None = None,
        video: MediaSource | None = None,
        audio2: MediaSource | None = None,
        speaker_mode: SpeakerMode | str | None = None,
        speaker_boxes: Sequence[Sequence[int]] | None = None,
        on_update: Callable[[Job], object] | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit, wait, and return the completed job; `JobFailed` if it ended otherwise."""
        handle = self.submit(
            image,
            audio,
            prompt,
            resolution=resolution,
            seed=seed,
            quality=quality,
            parallel=parallel,
            webhook_url=webhook_url,
            webhook_events=webhook_events,
            video=video,
            audio2=audio2,
            speaker_mode=speaker_mode,
            speaker_boxes=speaker_boxes,
            idempotency_key=idempotency_key,
        )
        job = handle.wait(on_update=on_update, timeout=timeout)
        if job.status is not JobStatus.COMPLETED:
            raise JobFailed(job)
        return job

    def submit(
        self,
        image: MediaSource | None,
        audio: MediaSource,
        prompt: str,
        *,
        resolution: Resolution | str | None = None,
        seed: int | None = None,
        quality: Quality | str | None = None,
        parallel: str | int | None = None,
        webhook_url: str | None = None,
        webhook_events: Sequence[WebhookEventType | str] | None = None,
        video: MediaSource | None = None,
        audio2: MediaSource | None = None,
        speaker_mode: SpeakerMode | str | None = None,
        speaker_boxes: Sequence[Sequence[int]] | None = None,
        idempotency_key: str | None = None,
    ) -> JobHandle:
        """Create a job: inline below the server's cap, else through `/uploads`.

        One `Idempotency-Key` (a new uuid4 unless given) covers every retry of this submit.
        """
        options = SubmitOptions(
            prompt,
            resolution,
            seed,
            quality,
            parallel=parallel,
            webhook_url=webhook_url,
            webhook_events=webhook_events,
            speaker_mode=speaker_mode,
            speaker_boxes=speaker_boxes,
        )
        key = idempotency_key or str(uuid.uuid4())
        limits = self._server_limits()
        with ExitStack() as stack:
            files = [
                stack.enter_context(self._media(kind, source, limits, name))
                for kind, source, name in job_inputs(image, video, audio, audio2)
            ]
            if uploads.fits_inline(files, limits.max_request_bytes):
                try:
                    call = self._api.generate_form(options, files, key)
                    return self.job(calls.parse(JobView, self._send(call)).job_id)
                except PayloadTooLarge as exc:
                    cap = uploads.request_cap(exc)
                    if cap is None:
                        raise
                    self._limits = limits.model_copy(update={"max_request_bytes": cap})
            body = uploads.uploads_body(files)
            grants = calls.parse(UploadGrants, self._send(self._api.uploads(body)))
            for media in files:
                self._send(calls.put(grants.of(media), media, media.chunks))
            call = self._api.generate_json(options, grants, files, key)
            return self.job(calls.parse(JobView, self._send(call)).job_id)

    def job(self, job_id: str) -> JobHandle:
        return JobHandle(self, job_id)

    def jobs(
        self,
        status: JobStatus | str | Sequence[JobStatus | str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Job]:
        """Your jobs, newest first, across every page; at most `limit` in all."""
        pages = calls.Pages(status, limit)
        while (call := pages.next_call(self._api)) is not None:
            for view in pages.take(calls.parse(JobList, self._send(call))):
                yield Job.model_validate(view.model_dump()).bind(self)

    def usage(self, from_: date | str | None = None, to: date | str | None = None) -> UsageReport:
        """Your daily usage by quality, UTC days `from_` to `to` included (by default the
        30 days to today; at most 366)."""
        return calls.parse(UsageReport, self._send(self._api.usage(from_, to)))

    def webhook_secret(self) -> str:
        """The secret that signs this key's webhooks (`whsec_...`), made on first use."""
        return calls.parse(WebhookSecret, self._send(self._api.webhook_secret())).secret

    def rotate_webhook_secret(self) -> str:
        """A new secret; for a grace window webhooks are signed with the old one too."""
        call = self._api.rotate_webhook_secret()
        return calls.parse(WebhookSecret, self._send(call)).secret

    def webhook_deliveries(self, job_id: str) -> WebhookDeliveries:
        """The job's webhook events and every delivery attempt."""
        call = self._api.webhook_deliveries(job_id)
        return calls.parse(WebhookDeliveries, self._send(call))

    def redeliver_webhook(self, job_id: str) -> WebhookEventView:
        """Send the job's last webhook event again (same webhook-id)."""
        call = self._api.redeliver_webhook(job_id)
        return calls.parse(WebhookEventView, self._send(call))

    def download(self, url: str, dest: Destination) -> Path:
        """Stream a signed URL to `dest` through a `.part` sibling, so no partial file stays.

        The key is never sent: a signed URL carries its own authorization.
        """
        dest = Path(dest)
        partial = dest.with_name(dest.name + ".part")
        try:
            with (
                self._stream(calls.fetch(self._api.absolute(url))) as response,
                partial.open("wb") as out,
            ):
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    out.write(chunk)
            partial.replace(dest)
        except httpx.TransportError as exc:
            raise calls.broken(url, exc) from exc
        finally:
            partial.unlink(missing_ok=True)
        return dest

    def _fetch_status(self, job_id: str) -> Job:
        return calls.parse(Job, self._send(self._api.status(job_id))).bind(self)

    def _wait_for(
        self, job_id: str, on_update: Callable[[Job], object] | None, timeout: float | None
    ) -> Job:
        deadline = Deadline(job_id, timeout, self._poll_interval, self._clock)
        streamed = self._watch_events(job_id, on_update, deadline)
        if streamed is not None:
            return streamed
        while True:
            job = self._fetch_status(job_id)
            if on_update is not None:
                on_update(job)
            if job.status.is_terminal:
                return job
            self._sleep(deadline.next_sleep())

    def _watch_events(
        self, job_id: str, on_update: Callable[[Job], object] | None, deadline: Deadline
    ) -> Job | None:
        """The job's events until its final one; None when the server has no stream or it
        kept breaking, and `wait` polls instead (docs/CLIENT.md)."""
        watch = events.StreamWatch()
        while True:
            request = self._api.events(job_id, watch.headers()).build(self._http, self._api_key)
            request.extensions["timeout"] = events.read_timeout(deadline.remaining()).as_dict()
            failed = True
            try:
                with closing(self._http.send(request, stream=True)) as response:
                    answer = events.judge(response, self._retry.statuses)
                    if answer is events.Answer.POLL:
                        return None
                    if answer is events.Answer.ERROR:
                        response.read()
                        raise error_from_response(response)
                    if answer is events.Answer.STREAM:
                        parser = events.EventParser()
                        for line in response.iter_lines():
                            job = watch.heard(parser.feed(line), Job, response)
                            if job is not None:
                                job.bind(self)
                                if on_update is not None:
                                    on_update(job)
                                if job.status.is_terminal:
                                    return job
                            deadline.remaining()
                        failed = False
            except httpx.TransportError:
                deadline.remaining()
            if not watch.should_resume(failed):
                return None
            if watch.broken:
                self._sleep(self._retry.backoff(watch.broken))

    def _cancel(self, job_id: str) -> Job:
        return calls.parse(Job, self._send(self._api.cancel(job_id))).bind(self)

    def _fetch_result(self, job_id: str) -> Result:
        return calls.parse(Result, self._send(self._api.result(job_id))).bind(self)

    def _server_limits(self) -> ServerLimits:
        """`/health`'s limits, asked once per client (again after a failed ask)."""
        if self._limits is None:
            try:
                self._limits = uploads.limits_from_health(self.health())
            except ConnectionFailed:
                raise
            except AvatarError:
                return ServerLimits()
        return self._limits

    def _media(
        self, kind: MediaKind, source: MediaSource, limits: ServerLimits, name: str = ""
    ) -> Media:
        """`name`: the request's field when it is not the kind's (`audio2`)."""
        media = self._open(kind, source, limits)
        media.name = name
        return media

    def _open(self, kind: MediaKind, source: MediaSource, limits: ServerLimits) -> Media:
        if not isinstance(source, str) or not is_url(source):
            return open_media(kind, source)
        with Spool.for_url(kind, source, limits.file_limit(kind)) as spool:
            try:
                with self._stream(calls.fetch(source)) as response:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        spool.write(chunk)
            except httpx.TransportError as exc:
                raise calls.broken(source, exc) from exc
            return spool.finish()

    @contextmanager
    def _stream(self, call: Call) -> Iterator[httpx.Response]:
        response = self._send(call, stream=True)
        try:
            yield response
        finally:
            response.close()

    def _send(self, call: Call, *, stream: bool = False) -> httpx.Response:
        """Send `call`, retrying as the policy allows; a non-2xx answer raises its error."""
        retries = Retries(self._retry, call.url)
        lost = False
        while True:
            try:
                request = call.build(self._http, self._api_key)
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                lost = True
                self._sleep(retries.after_error(exc))
                continue
            if response.is_success or (lost and response.status_code in call.done_if_lost):
                return response
            response.read()
            self._sleep(retries.after_answer(response))
