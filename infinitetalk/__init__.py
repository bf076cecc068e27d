"""Video engines behind the GPU agent: the Engine protocol, media checks and the engines.

Only the CPU `preview` engine exists in this build; `create_engine` picks one by name.
"""

from infinitetalk.engine import (
    CancelCheck,
    CancelledError,
    Engine,
    EngineError,
    InvalidInputError,
    ProgressCallback,
    VideoRequest,
    VideoResult,
)
from infinitetalk.factory import create_engine
from infinitetalk.media import (
    AudioInfo,
    ImageInfo,
    VideoInfo,
    output_size,
    probe_audio,
    probe_image,
    probe_video,
    verify_output,
)
from infinitetalk.preview import PreviewEngine

__all__ = [
    "AudioInfo",
    "CancelCheck",
    "CancelledError",
    "Engine",
    "EngineError",
    "ImageInfo",
    "InvalidInputError",
    "PreviewEngine",
    "ProgressCallback",
    "VideoInfo",
    "VideoRequest",
    "VideoResult",
    "create_engine",
    "output_size",
    "probe_audio",
    "probe_image",
    "probe_video",
    "verify_output",
]
