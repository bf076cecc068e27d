"""`ModelResponse`: JSON responses whose pydantic models pydantic-core encodes in one pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar import MediaType, Request, Response
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.response.base import ASGIResponse
from litestar.serialization import default_serializer
from litestar.types import Serializer, TypeEncodersMap
from pydantic import BaseModel


class ModelBody(ASGIResponse):
    """The ASGI response of a model with no extra headers, cookies or background task: what
    Litestar's `ASGIResponse` would send. It sets the attributes itself: building the header
    set in `ASGIResponse.__init__` is the cost it skips."""

    __slots__ = ()

    def __init__(self, body: bytes, status: int) -> None:
        self.body = body
        self.status_code = status
        self.content_length = len(body)
        self.headers = MutableScopeHeaders(
            {
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
            }
        )
        self._encoded_cookies = ()
        self.background = None
        self.encoding = "utf-8"
        self.is_head_response = False


class ModelResponse(Response[Any]):
    """Litestar's own path for a model is `model_dump(mode="json")`, a dict, then msgspec;
    `model_dump_json` writes the same bytes straight from the model, without the dict."""

    def render(
        self, content: Any, media_type: str, enc_hook: Serializer = default_serializer
    ) -> bytes:
        if isinstance(content, BaseModel) and media_type == MediaType.JSON:
            return content.__pydantic_serializer__.to_json(content)
        return super().render(content, media_type, enc_hook)

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        """A handler's model goes out as `ModelBody`: Litestar's `ASGIResponse` and its header
        set were a tenth of a status read's CPU. Anything else takes Litestar's path."""
        status = self.status_code or status_code or 200
        plain = not (
            self.headers
            or headers
            or self.cookies
            or cookies
            or encoded_headers
            or self.background
            or background
            or is_head_response
        )
        if (
            plain
            and isinstance(self.content, BaseModel)
            and (self.media_type or media_type or MediaType.JSON) == MediaType.JSON
            and status >= 200
            and status not in (204, 304)
        ):
            return ModelBody(self.content.__pydantic_serializer__.to_json(self.content), status)
        return super().to_asgi_response(
            app,
            request,
            background=background,
            cookies=cookies,
            encoded_headers=encoded_headers,
            headers=headers,
            is_head_response=is_head_response,
            media_type=media_type,
            status_code=status_code,
            type_encoders=type_encoders,
        )
