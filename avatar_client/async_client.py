"""`AsyncAvatarClient`: `AvatarClient`'s mirror for asyncio. The same shared modules decide
(calls, retry, uploads, inputs, polling); this module only awaits the I/O."""

import asyncio
import inspect
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from datetime import date
from functools import partial
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
from avatar_client.models import AsyncJob, AsyncJobHandle, AsyncResult, Destination
from avatar_client.polling import DEFAULT_POLL_INTERVAL, Deadline
from avatar_client.retry import Retries, RetryPolicy
from avatar_client.sync_client import DEFAULT_TIMEOUT
from avatar_client.uploads import ServerLimits, UploadGrants
from contracts import JobList, JobStatus, JobView, Quality, Resolution, SpeakerMode, UsageReport
from contracts.media import MediaKind
from contracts.webhooks import (
    WebhookDeliveries,
    WebhookEventType,
    WebhookEventView,
    WebhookSecret,
)

OnUpdate = Callable[[AsyncJob], object | Awaitable[object]]


class AsyncAvatarClient:
    """`AvatarClient` for asyncio: the same constructor and methods, awaited
    (`async for job in client.jobs()`). `sleep` is awaited between retries and polls."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if env is None else env
        self.url = resolve_url(url, env)
        self._api_key = resolve_api_key(api_key, env, self.url, Path.cwd())
        self._api = Api(self.url)
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=timeout, headers={"User-Agent": calls.USER_AGENT}
        )
        self._retry = retry or RetryPolicy()
        self._poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock
        self._limits: ServerLimits | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def health(self) -> dict[str, Any]:
        return calls.parse_json(await self._send(self._api.health()))

    async def run(
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
        on_update: OnUpdate | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the wait's deadline, as in AvatarClient
        idempotency_key: str | None = None,
    ) -> AsyncJob:
        """Submit, wait, and return the completed job; `JobFailed` if it ended otherwise."""
        handle = await self.submit(
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
        job = await handle.wait(on_update=on_update, timeout=timeout)
        if job.status is not JobStatus.COMPLETED:
            raise JobFailed(job)
        return job

    async def submit(
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
    ) -> AsyncJobHandle:
        """Create a job: inline below the server's cap, else through `/uploads`."""
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
        limits = await self._server_limits()
        async with AsyncExitStack() as stack:
            files = [
                stack.enter_context(await self._media(kind, source, limits, name))
                for kind, source, name in job_inputs(image, video, audio, audio2)
            ]
            if uploads.fits_inline(files, limits.max_request_bytes):
                try:
                    call = self._api.generate_form(options, files, key)
                    return self.job(calls.parse(JobView, await self._send(call)).job_id)
                except PayloadTooLarge as exc:
                    cap = uploads.request_cap(exc)
                    if cap is None:
                        raise
                    self._limits = limits.model_copy(update={"max_request_bytes": cap})
            body = uploads.uploads_body(files)
            grants = calls.parse(UploadGrants, await self._send(self._api.uploads(body)))
            for media in files:
                await self._send(calls.put(grants.of(media), media, partial(_chunks, media)))
            call = self._api.generate_json(options, grants, files, key)
            return self.job(calls.parse(JobView, await self._send(call)).job_id)

    def job(self, job_id: str) -> AsyncJobHandle:
        return AsyncJobHandle(self, job_id)

    async def jobs(
        self,
        status: JobStatus | str | Sequence[JobStatus | str] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[AsyncJob]:
        """Your jobs, newest first, across every page; at most `limit` in all."""
        pages = calls.Pages(status, limit)
        while (call := pages.next_call(self._api)) is not None:
            for view in pages.take(calls.parse(JobList, await self._send(call))):
                yield AsyncJob.model_validate(view.model_dump()).bind(self)

    async def usage(
        self, from_: date | str | None = None, to: date | str | None = None
    ) -> UsageReport:
        """Your daily usage by quality, UTC days `from_` to `to` included (by default the
        30 days to today; at most 366)."""
        return calls.parse(UsageReport, await self._send(self._api.usage(from_, to)))

    async def webhook_secret(self) -> str:
        """The secret that signs this key's webhooks (`whsec_...`), made on first use."""
        return calls.parse(WebhookSecret, await self._send(self._api.webhook_secret())).secret

    async def rotate_webhook_secret(self) -> str:
        """A new secret; for a grace window webhooks are signed with the old one too."""
        call = self._api.rotate_webhook_secret()
        return calls.parse(WebhookSecret, await self._send(call)).secret

    async def webhook_deliveries(self, job_id: str) -> WebhookDeliveries:
        """The job's webhook events and every delivery attempt."""
        call = self._api.webhook_deliveries(job_id)
        return calls.parse(WebhookDeliveries, await self._send(call))

    async def redeliver_webhook(self, job_id: str) -> WebhookEventView:
        """Send the job's last webhook event again (same webhook-id)."""
        call = self._api.redeliver_webhook(job_id)
        return calls.parse(WebhookEventView, await self._send(call))

    async def download(self, url: str, dest: Destination) -> Path:
        """Stream a signed URL to `dest` through a `.part` sibling; the key is never sent."""
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")
        try:
            async with self._stream(calls.fetch(self._api.absolute(url))) as response:
                with part.open("wb") as out:
                    async for chunk in response.aiter_bytes(CHUNK_BYTES):
                        out.write(chunk)
            part.replace(dest)
        except httpx.TransportError as exc:
            raise calls.broken(url, exc) from exc
        finally:
            part.unlink(missing_ok=True)
        return dest

    async def _fetch_status(self, job_id: str) -> AsyncJob:
        return calls.parse(AsyncJob, await self._send(self._api.status(job_id))).bind(self)

    async def _wait_for(
        self,
        job_id: str,
        on_update: OnUpdate | None,
        timeout: float | None,  # noqa: ASYNC109 - the wait's deadline
    ) -> AsyncJob:
        deadline = Deadline(job_id, timeout, self._poll_interval, self._clock)
        streamed = await self._watch_events(job_id, on_update, deadline)
        if streamed is not None:
            return streamed
        while True:
            job = await self._fetch_status(job_id)
            await _report(on_update, job)
            if job.status.is_terminal:
                return job
            await self._sleep(deadline.next_sleep())

    async def _watch_events(
        self, job_id: str, on_update: OnUpdate | None, deadline: Deadline
    ) -> AsyncJob | None:
        """`AvatarClient._watch_events`, awaited."""
        watch = events.StreamWatch()
        while True:
            request = self._api.events(job_id, watch.headers()).build(self._http, self._api_key)
            request.extensions["timeout"] = events.read_timeout(deadline.remaining()).as_dict()
            failed = True
            try:
                async with aclosing(await self._http.send(request, stream=True)) as response:
                    answer = events.judge(response, self._retry.statuses)
                    if answer is events.Answer.POLL:
                        return None
                    if answer is events.Answer.ERROR:
                        await response.aread()
                        raise error_from_response(response)
                    if answer is events.Answer.STREAM:
                        parser = events.EventParser()
                        async for line in response.aiter_lines():
                            job = watch.heard(parser.feed(line), AsyncJob, response)
                            if job is not None:
                                job.bind(self)
                                await _report(on_update, job)
                                if job.status.is_terminal:
                                    return job
                            deadline.remaining()
                        failed = False
            except httpx.TransportError:
                deadline.remaining()
            if not watch.should_resume(failed):
                return None
            if watch.broken:
                await self._sleep(self._retry.backoff(watch.broken))

    async def _cancel(self, job_id: str) -> AsyncJob:
        return calls.parse(AsyncJob, await self._send(self._api.cancel(job_id))).bind(self)

    async def _fetch_result(self, job_id: str) -> AsyncResult:
        return calls.parse(AsyncResult, await self._send(self._api.result(job_id))).bind(self)

    async def _server_limits(self) -> ServerLimits:
        """`/health`'s limits, asked once per client (again after a failed ask)."""
        if self._limits is None:
            try:
                self._limits = uploads.limits_from_health(await self.health())
            except ConnectionFailed:
                raise
            except AvatarError:
                return ServerLimits()
        return self._limits

    async def _media(
        self, kind: MediaKind, source: MediaSource, limits: ServerLimits, name: str = ""
    ) -> Media:
        """`name`: the request's field when it is not the kind's (`audio2`)."""
        media = await self._open(kind, source, limits)
        media.name = name
        return media

    async def _open(self, kind: MediaKind, source: MediaSource, limits: ServerLimits) -> Media:
        if not isinstance(source, str) or not is_url(source):
            return open_media(kind, source)
        with Spool.for_url(kind, source, limits.file_limit(kind)) as spool:
            try:
                async with self._stream(calls.fetch(source)) as response:
                    async for chunk in response.aiter_bytes(CHUNK_BYTES):
                        spool.write(chunk)
            except httpx.TransportError as exc:
                raise calls.broken(source, exc) from exc
            return spool.finish()

    @asynccontextmanager
    async def _stream(self, call: Call) -> AsyncIterator[httpx.Response]:
        response = await self._send(call, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def _send(self, call: Call, *, stream: bool = False) -> httpx.Response:
        """Send `call`, retrying as the policy allows; a non-2xx answer raises its error."""
        retries = Retries(self._retry, call.url)
        lost = False
        while True:
            try:
                request = call.build(self._http, self._api_key)
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                lost = True
                await self._sleep(retries.after_error(exc))
                continue
            if response.is_success or (lost and response.status_code in call.done_if_lost):
                return response
            await response.aread()
            await self._sleep(retries.after_answer(response))


async def _report(on_update: OnUpdate | None, job: AsyncJob) -> None:
    if on_update is not None:
        outcome = on_update(job)
        if inspect.isawaitable(outcome):
            await outcome


async def _chunks(media: Media) -> AsyncIterator[bytes]:
    """httpx's async client streams only async iterables; the file reads stay short."""
    for chunk in media.chunks():
        yield chunk
