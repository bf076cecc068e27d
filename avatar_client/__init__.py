"""Python SDK and `avatar` CLI for the talking-avatar video API (docs/CLIENT.md).

It depends on httpx, pydantic and `contracts`' wire models only, never on the server.
"""

from avatar_client.async_client import AsyncAvatarClient
from avatar_client.models import AsyncJob, AsyncJobHandle, AsyncResult, Job, JobHandle, Result
from avatar_client.retry import RetryPolicy
from avatar_client.sync_client import AvatarClient

__all__ = [
    "AsyncAvatarClient",
    "AsyncJob",
    "AsyncJobHandle",
    "AsyncResult",
    "AvatarClient",
    "Job",
    "JobHandle",
    "Result",
    "RetryPolicy",
]
