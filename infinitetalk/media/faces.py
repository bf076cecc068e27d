"""Where the two speakers of a picture are: the client's boxes, two detected faces, or halves.

The detector is OpenCV's frontal-face Haar cascade (`opencv-python-headless`, the agent
extra): its model ships inside the wheel, so nothing is downloaded at run time, it runs on
the CPU in milliseconds, and it needs no GPU memory next to the model. YuNet is more
accurate but its ONNX model is not in the wheel; mediapipe ships its models but brings a
large dependency tree into the GPU image. Only exactly two faces count: anything else falls
back to the left and right halves, and the job reports which one it used.
"""

import importlib.util
from pathlib import Path

from contracts import BoxSource, SpeakerAssignment
from contracts.jobs import Box

MIN_FACE_SHARE = 0.06
"""Smallest face side, as a share of the picture's short side: smaller finds are noise."""
CASCADE_WINDOW = 24
"""The cascade's smallest face, in pixels of the copy it searches."""
DETECT_SHORT_SIDE = round(CASCADE_WINDOW / MIN_FACE_SHARE)
"""Faces are looked for on a copy with this short side (400 px, up or down), so that the
smallest face kept is still one cascade window: on a copy capped at 640 px on its long side,
faces under 10 % of a wide picture's height were missed (bench/faces.py)."""
DETECT_LONG_SIDE = 1280
"""... and at most this long side, so a panorama's cost stays bounded."""
BOX_GROW = (1.6, 1.9)
"""A speaker's box around a face: wider and taller (the jaw and chin move with speech)."""


def detector_available() -> bool:
    """Whether OpenCV is installed: agents without it do not take two-speaker jobs."""
    return importlib.util.find_spec("cv2") is not None


def find_speakers(image_path: Path) -> SpeakerAssignment:
    """Two faces, left to right (the left one speaks the first track), else the halves."""
    import cv2  # the agent extra; imported only when a two-speaker job runs
    import numpy as np
    from PIL import Image

    with Image.open(image_path) as source:
        picture = source.convert("L")
    width, height = picture.size
    scale = min(DETECT_SHORT_SIDE / min(width, height), DETECT_LONG_SIDE / max(width, height))
    small = picture.resize((max(1, round(width * scale)), max(1, round(height * scale))))
    cascades = Path(cv2.__file__).parent / "data"  # the wheel's models (`cv2.data`)
    cascade = cv2.CascadeClassifier(str(cascades / "haarcascade_frontalface_default.xml"))
    smallest = max(CASCADE_WINDOW, round(MIN_FACE_SHARE * min(small.size)))
    found = cascade.detectMultiScale(
        np.asarray(small), scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest)
    )
    faces = [tuple(int(v / scale) for v in face) for face in found]
    if len(faces) != 2:
        return halves(width, height)
    left, right = sorted(faces, key=lambda face: face[0] + face[2] / 2)
    boxes = (_around(left, width, height), _around(right, width, height))
    return SpeakerAssignment(boxes=boxes, source=BoxSource.DETECTED)


def halves(width: int, height: int) -> SpeakerAssignment:
    """The fallback: the left half speaks the first track, the right half the second."""
    middle = width // 2
    return SpeakerAssignment(
        boxes=((0, 0, middle, height), (middle, 0, width, height)), source=BoxSource.HALVES
    )


def _around(face: tuple[int, ...], width: int, height: int) -> Box:
    x, y, w, h = face
    grow_x, grow_y = BOX_GROW
    center_x, center_y = x + w / 2, y + h * 0.6
    half_w, half_h = w * grow_x / 2, h * grow_y / 2
    return (
        max(0, round(center_x - half_w)),
        max(0, round(center_y - half_h)),
        min(width, round(center_x + half_w)),
        min(height, round(center_y + half_h)),
    )
