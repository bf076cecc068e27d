"""Video engines behind the GPU agent: the Engine protocol, media checks and the engines.

`infinitetalk` runs upstream InfiniteTalk (resident or subprocess mode, see `factory`);
`preview` animates the portrait on the CPU. `create_engine` picks one by name.
"""

from infinitetalk.engine import (
    CancelCheck,
    CancelledError,
    Engine,
    EngineError,
    InvalidInputError,
    ProgressCallback,
    QualityUnavailableError,
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
from infinitetalk.preflight import EngineStartError
from infinitetalk.preview import PreviewEngine
from infinitetalk.settings import InfiniteTalkSettings

__all__ = [
    "AudioInfo",
    "CancelCheck",
    "CancelledError",
    "Engine",
    "EngineError",
    "EngineStartError",
    "ImageInfo",
    "InfiniteTalkSettings",
    "InvalidInputError",
    "PreviewEngine",
    "ProgressCallback",
    "QualityUnavailableError",
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
