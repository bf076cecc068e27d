"""Python SDK and `avatar` CLI for the talking-avatar video API."""

from avatar_client.client import ApiError, AvatarClient, ConnectionFailed

__all__ = ["ApiError", "AvatarClient", "ConnectionFailed"]
