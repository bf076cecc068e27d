"""`ModelResponse`: JSON responses whose pydantic models pydantic-core encodes in one pass."""

from typing import Any

from litestar import MediaType, Response
from litestar.serialization import default_serializer
from litestar.types import Serializer
from pydantic import BaseModel


class ModelResponse(Response[Any]):
    """Litestar's own path for a model is `model_dump(mode="json")`, a dict, then msgspec;
    `model_dump_json` writes the same bytes straight from the model, without the dict."""

    def render(
        self, content: Any, media_type: str, enc_hook: Serializer = default_serializer
    ) -> bytes:
        if isinstance(content, BaseModel) and media_type == MediaType.JSON:
            return content.__pydantic_serializer__.to_json(content)
        return super().render(content, media_type, enc_hook)
