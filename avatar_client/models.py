"""What the clients return: the wire views plus the calls that naturally follow them.

`Job` and `Result` are the API's `JobView` and `ResultView` (every field), bound to the
client that fetched them so that `.download(path)` needs nothing else; `JobHandle` names a
job without fetching it. The `Async*` twins await the same calls.
"""

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, Self, TypeVar

from pydantic import PrivateAttr

from contracts import JobView, ResultView

Destination = str | os.PathLike[str]
_T = TypeVar("_T")


class SyncOps(Protocol):
    def download(self, url: str, dest: Destination) -> Path: ...
    def _fetch_status(self, job_id: str) -> "Job": ...
    def _wait_for(
        self, job_id: str, on_update: "Callable[[Job], object] | None", timeout: float | None
    ) -> "Job": ...
    def _cancel(self, job_id: str) -> "Job": ...
    def _fetch_result(self, job_id: str) -> "Result": ...


class AsyncOps(Protocol):
    async def download(self, url: str, dest: Destination) -> Path: ...
    async def _fetch_status(self, job_id: str) -> "AsyncJob": ...
    async def _wait_for(
        self,
        job_id: str,
        on_update: "Callable[[AsyncJob], object | Awaitable[object]] | None",
        timeout: float | None,  # noqa: ASYNC109 - the wait's deadline
    ) -> "AsyncJob": ...
    async def _cancel(self, job_id: str) -> "AsyncJob": ...
    async def _fetch_result(self, job_id: str) -> "AsyncResult": ...


class _JobFields(JobView):
    @property
    def id(self) -> str:
        return self.job_id

    @property
    def video_url(self) -> str | None:
        """The signed URL of the MP4 once the job completed, else None."""
        return self.result_url


class Job(_JobFields):
    _ops: SyncOps | None = PrivateAttr(default=None)

    def bind(self, ops: SyncOps) -> Self:
        """Attach the client that made it, so `download` can use it."""
        self._ops = ops
        return self

    def download(self, path: Destination) -> Path:
        """Save the MP4 to `path`; `ResultNotReady` unless the job completed."""
        ops = _require(self._ops)
        if self.video_url is not None:
            return ops.download(self.video_url, path)
        return ops._fetch_result(self.job_id).download(path)


class AsyncJob(_JobFields):
    _ops: AsyncOps | None = PrivateAttr(default=None)

    def bind(self, ops: AsyncOps) -> Self:
        """Attach the client that made it, so `download` can use it."""
        self._ops = ops
        return self

    async def download(self, path: Destination) -> Path:
        ops = _require(self._ops)
        if self.video_url is not None:
            return await ops.download(self.video_url, path)
        result = await ops._fetch_result(self.job_id)
        return await result.download(path)


class Result(ResultView):
    _ops: SyncOps | None = PrivateAttr(default=None)

    def bind(self, ops: SyncOps) -> Self:
        """Attach the client that made it, so `download` can use it."""
        self._ops = ops
        return self

    def download(self, path: Destination) -> Path:
        return _require(self._ops).download(self.url, path)


class AsyncResult(ResultView):
    _ops: AsyncOps | None = PrivateAttr(default=None)

    def bind(self, ops: AsyncOps) -> Self:
        """Attach the client that made it, so `download` can use it."""
        self._ops = ops
        return self

    async def download(self, path: Destination) -> Path:
        return await _require(self._ops).download(self.url, path)


class JobHandle:
    """A job by id: each method is one call (or a polling loop, `wait`)."""

    def __init__(self, ops: SyncOps, job_id: str) -> None:
        self._ops = ops
        self.id = job_id

    def __repr__(self) -> str:
        return f"JobHandle({self.id!r})"

    def status(self) -> Job:
        return self._ops._fetch_status(self.id)

    def wait(
        self, on_update: Callable[[Job], object] | None = None, timeout: float | None = None
    ) -> Job:
        """Poll until the job is terminal (completed, failed, cancelled or expired)."""
        return self._ops._wait_for(self.id, on_update, timeout)

    def cancel(self) -> Job:
        return self._ops._cancel(self.id)

    def result(self) -> Result:
        return self._ops._fetch_result(self.id)


class AsyncJobHandle:
    def __init__(self, ops: AsyncOps, job_id: str) -> None:
        self._ops = ops
        self.id = job_id

    def __repr__(self) -> str:
        return f"AsyncJobHandle({self.id!r})"

    async def status(self) -> AsyncJob:
        return await self._ops._fetch_status(self.id)

    async def wait(
        self,
        on_update: Callable[[AsyncJob], object | Awaitable[object]] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the wait's deadline
    ) -> AsyncJob:
        """Poll until the job is terminal; `on_update` may be a plain or an async function."""
        return await self._ops._wait_for(self.id, on_update, timeout)

    async def cancel(self) -> AsyncJob:
        return await self._ops._cancel(self.id)

    async def result(self) -> AsyncResult:
        return await self._ops._fetch_result(self.id)


def _require(ops: _T | None) -> _T:
    if ops is None:
        raise RuntimeError("this object was not made by a client, so it cannot download")
    return ops
