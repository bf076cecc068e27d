"""A small synchronous SDK for the public API (docs/API.md).

It depends only on `contracts` and httpx, so API consumers never pull in the server.
"""

import mimetypes
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from contracts import JobView, Quality, Resolution, ResultView

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = "avatar-client/0.1"
# Statuses worth polling through: the job is still running even if one status call failed.
_TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
_CHUNK = 1024 * 1024
_M = TypeVar("_M", JobView, ResultView)


class ApiError(Exception):
    """A non-2xx answer, carrying the error envelope's code, message and details."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def transient(self) -> bool:
        """Whether retrying the same call later may succeed."""
        return self.status_code in _TRANSIENT_STATUSES


class ConnectionFailed(ApiError):
    """The server could not be reached (or the connection broke); the httpx error is the cause."""

    def __init__(self, url: str, error: httpx.TransportError) -> None:
        super().__init__(
            0, "CONNECTION_FAILED", f"cannot reach {url}: {error or type(error).__name__}"
        )
        self.url = url

    @property
    def transient(self) -> bool:
        return True


def _error_from_response(response: httpx.Response) -> ApiError:
    """Build an ApiError from the envelope, or from the raw body when a proxy answered."""
    try:
        body = response.json()
        error = body["error"]
        return ApiError(
            response.status_code,
            str(error["code"]),
            str(error["message"]),
            error.get("details") or {},
        )
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason_phrase
        return ApiError(response.status_code, f"HTTP_{response.status_code}", text)


class AvatarClient:
    """Client of the avatar API; reuse one instance (and its connection pool) per process.

    `http` may be injected (tests use `httpx.MockTransport`); it is then not closed here and
    its own timeout applies. Give it no default auth: signed download URLs must not get the key.
    `sleep` and `clock` are injectable so `wait` can be tested without waiting.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.Client | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._sleep = sleep
        self._clock = clock

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

    def generate(
        self,
        image: Path,
        audio: Path,
        prompt: str,
        *,
        resolution: Resolution | str = Resolution.P720,
        seed: int | None = None,
        quality: Quality | str = Quality.STANDARD,
    ) -> JobView:
        """Create a job. The files are streamed from disk, never read whole into memory.

        `quality="fast"` trades quality for speed (a distilled LoRA at 4 steps); an agent
        without it fails the job with QUALITY_UNAVAILABLE rather than running it slowly.
        """
        data = {"prompt": prompt, "resolution": str(resolution), "quality": str(quality)}
        if seed is not None:
            data["seed"] = str(seed)
        with ExitStack() as stack:
            files = {
                name: (path.name, stack.enter_context(path.open("rb")), _guess_type(path))
                for name, path in (("image", Path(image)), ("audio", Path(audio)))
            }
            response = self._request("POST", "/generate", data=data, files=files)
        return _parse(JobView, response)

    def status(self, job_id: str) -> JobView:
        return _parse(JobView, self._request("GET", f"/status/{quote(job_id, safe='')}"))

    def result(self, job_id: str) -> ResultView:
        return _parse(ResultView, self._request("GET", f"/result/{quote(job_id, safe='')}"))

    def health(self) -> dict[str, Any]:
        response = self._request("GET", "/health", auth=False)
        try:
            return dict(response.json())
        except ValueError as exc:
            raise _invalid_response(response, str(exc)) from exc

    def wait(
        self,
        job_id: str,
        *,
        poll_interval: float = 1.0,
        timeout: float | None = None,
        on_update: Callable[[JobView], None] | None = None,
        max_transient_errors: int = 5,
    ) -> JobView:
        """Poll `/status` until the job is terminal and return its last view.

        A few consecutive transient failures (connection, 429, 5xx gateway) are polled
        through, since the job keeps running server-side; `TimeoutError` after `timeout`.
        """
        deadline = None if timeout is None else self._clock() + timeout
        failures = 0
        while True:
            try:
                job = self.status(job_id)
            except ApiError as exc:
                failures += 1
                if not exc.transient or failures > max_transient_errors:
                    raise
            else:
                failures = 0
                if on_update is not None:
                    on_update(job)
                if job.status.is_terminal:
                    return job
            if deadline is not None and self._clock() + poll_interval > deadline:
                raise TimeoutError(f"job {job_id} not finished after {timeout:g} s")
            self._sleep(poll_interval)

    def download(self, url: str, dest: Path) -> Path:
        """Stream a signed URL to `dest` via a temporary sibling, so no partial file stays.

        The API key is never sent: a signed URL carries its own authorization and may
        point at third-party storage.
        """
        dest = Path(dest)
        partial = dest.with_name(dest.name + ".part")
        absolute = url if "://" in url else f"{self.base_url}/{url.lstrip('/')}"
        try:
            with self._http.stream("GET", absolute) as response:
                if not response.is_success:
                    response.read()
                    raise _error_from_response(response)
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes(_CHUNK):
                        out.write(chunk)
            partial.replace(dest)
        except httpx.TransportError as exc:
            raise ConnectionFailed(absolute, exc) from exc
        finally:
            partial.unlink(missing_ok=True)
        return dest

    def _request(
        self, method: str, path: str, *, auth: bool = True, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._api_key}"} if auth else {}
        url = f"{self.base_url}{path}"
        try:
            response = self._http.request(method, url, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed(url, exc) from exc
        if not response.is_success:
            raise _error_from_response(response)
        return response


def _guess_type(path: Path) -> str:
    """A hint only: the server judges media by content bytes, not by this type."""
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _parse(model: type[_M], response: httpx.Response) -> _M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise _invalid_response(response, str(exc)) from exc


def _invalid_response(response: httpx.Response, why: str) -> ApiError:
    return ApiError(response.status_code, "INVALID_RESPONSE", f"unexpected response body: {why}")
