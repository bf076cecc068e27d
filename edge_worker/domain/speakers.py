"""Two speakers: the request's mode and boxes, and whether its picture can hold two people.

"Two persons' worth of input" is an image (not a video: upstream fixes each speaker's
region on the first frame, while a dubbed video's people move) that either comes with
`speaker_boxes`, or is at least as wide as tall, so that the agent's face detector (or,
failing it, the left and right halves) has two people side by side to find.
"""

import json
from collections.abc import Sequence

from contracts import ErrorCode, InputKind, SpeakerMode
from contracts.errors import SpeakerBoxesDetails, TwoSpeakersDetails
from contracts.jobs import Box
from edge_worker.domain.problems import Problem, invalid_input

BOXES_FIELD = "speaker_boxes"
MODE_FIELD = "speaker_mode"
MAX_OVERLAP = 0.5
"""Largest share of the smaller box that the two boxes may have in common."""
_SHAPE = "speaker_boxes must be two boxes [[x1, y1, x2, y2], [x1, y1, x2, y2]] of whole pixels"


def parse_speaker_mode(value: str | None) -> SpeakerMode | None:
    if value in (None, ""):
        return None
    try:
        return SpeakerMode(value)
    except ValueError:
        raise invalid_input(
            f"speaker_mode must be one of {', '.join(m.value for m in SpeakerMode)}", MODE_FIELD
        ) from None


def parse_boxes_text(value: str | None) -> tuple[Box, Box] | None:
    """A multipart field's JSON text, e.g. `[[0, 0, 100, 120], [110, 0, 210, 120]]`."""
    if value in (None, ""):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        raise invalid_input(f"{_SHAPE}; it is not JSON", BOXES_FIELD) from None
    return check_box_shape(parsed)


def check_box_shape(value: object) -> tuple[Box, Box]:
    """Two boxes of four whole, non-negative numbers with x1 < x2 and y1 < y2."""
    if not (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2):
        raise invalid_input(_SHAPE, BOXES_FIELD)
    boxes: list[Box] = []
    for box in value:
        if not (isinstance(box, Sequence) and not isinstance(box, str) and len(box) == 4):
            raise invalid_input(_SHAPE, BOXES_FIELD)
        if not all(type(n) is int and 0 <= n < 2**31 for n in box):
            raise invalid_input(_SHAPE, BOXES_FIELD)
        x1, y1, x2, y2 = box
        if x1 >= x2 or y1 >= y2:
            raise invalid_input(
                "each speaker box must have x1 < x2 and y1 < y2 (left, top, right, bottom)",
                BOXES_FIELD,
            )
        boxes.append((x1, y1, x2, y2))
    return boxes[0], boxes[1]


def check_speaker_fields(
    has_audio2: bool, mode: SpeakerMode | None, boxes: tuple[Box, Box] | None
) -> SpeakerMode | None:
    """The mode a two-speaker job runs in (sequential by default); the speaker fields
    mean nothing without `audio2`, so they are refused there rather than ignored."""
    if not has_audio2:
        for name, given in ((MODE_FIELD, mode), (BOXES_FIELD, boxes)):
            if given is not None:
                raise invalid_input(f"{name} needs audio2, the second speaker's track", name)
        return None
    return mode or SpeakerMode.SEQUENTIAL


def check_two_speakers(
    input_kind: InputKind, picture_size: tuple[int, int] | None, boxes: tuple[Box, Box] | None
) -> None:
    """Refuse a two-speaker request whose picture cannot hold two speakers, or whose boxes
    leave the picture or overlap by more than half of the smaller one (intersection over
    the smaller box: unlike IoU, a small box inside a large one counts as overlapping)."""
    if input_kind is InputKind.VIDEO:
        raise Problem(
            ErrorCode.TWO_SPEAKERS_UNSUPPORTED,
            "two speakers need an image: upstream fixes each speaker's region on the first "
            "frame, so a video's moving people would speak from the wrong place",
            TwoSpeakersDetails(reason="video_input"),
        )
    if picture_size is None:
        return
    width, height = picture_size
    if boxes is None:
        if height > width:
            raise Problem(
                ErrorCode.TWO_SPEAKERS_UNSUPPORTED,
                f"a {width}x{height} portrait-format image has no room for two people side "
                "by side; send speaker_boxes to say where each speaker is",
                TwoSpeakersDetails(reason="portrait_without_boxes"),
            )
        return
    for index, (x1, y1, x2, y2) in enumerate(boxes):
        if x2 > width or y2 > height:
            raise Problem(
                ErrorCode.SPEAKER_BOXES_INVALID,
                f"speaker box {index} {[x1, y1, x2, y2]} leaves the {width}x{height} picture",
                SpeakerBoxesDetails(reason="outside", width=width, height=height, box=index),
            )
    share = overlap(*boxes)
    if share > MAX_OVERLAP:
        raise Problem(
            ErrorCode.SPEAKER_BOXES_INVALID,
            f"the speaker boxes share {share:.0%} of the smaller one; at most "
            f"{MAX_OVERLAP:.0%} is allowed",
            SpeakerBoxesDetails(
                reason="overlap", width=width, height=height, overlap=round(share, 4)
            ),
        )


def overlap(first: Box, second: Box) -> float:
    """The area the boxes share, as a fraction of the smaller box's area."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min(_area(first), _area(second))
    return width * height / smaller


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])
