"""Face detection and encoding: dlib (default, models from `face-recognition-models`) or insightface
buffalo_l ONNX models from a local folder (`insight.py`).

Face work runs on its own worker thread, so a photo never delays a voice identification.
"""

from __future__ import annotations

import asyncio
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from mcp_servers.core.errors import UserError

from .decisions import DLIB_FACE, Thresholds
from .voice import unit

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_FACES = 20
UPSAMPLE_BELOW = 1_100_000  # pixels: smaller images with no face found are searched again at 2x
DETECT_PIXELS = 600_000

_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face")


async def run(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_worker, fn, *args)


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # left, top, right, bottom, in the pixels of the array given
    score: float  # detector confidence
    embedding: np.ndarray  # unit vector


class FaceModel(ABC):
    name: str
    dim: int
    thresholds: Thresholds

    @abstractmethod
    def faces(self, rgb: np.ndarray, upsample: int | None = None) -> list[Face]:
        """Every face found (at most MAX_FACES, largest first), each with its encoding."""


class DlibFaces(FaceModel):
    """dlib's HOG detector, 5-point landmarks and ResNet encoder (LFW 99.38 %).

    HOG detection finds faces from about 80 px; upsampling doubles the cost (149 → 305 ms per 1 MP
    measured here), so it is used only when a small image shows no face at first, or when asked.
    Landmarks and encodings use the full working image whatever size detection ran at.
    """

    name = "dlib"
    dim = 128
    thresholds = DLIB_FACE

    def __init__(self) -> None:
        import warnings

        import dlib

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
            import face_recognition_models as frm

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def _detect(self, rgb: np.ndarray, upsample: int | None) -> tuple[list[Any], list[float]]:
        """Boxes in `rgb`'s pixels. By default HOG runs on at most DETECT_PIXELS (its cost grows with
        pixels; faces stay ≥ 80 px in usual photos), then at full size, then at 2x if still none."""
        h, w = rgb.shape[:2]
        if upsample is not None:
            boxes, scores, _ = self._detector.run(rgb, upsample, 0.0)
            return list(boxes), list(scores)
        if h * w > DETECT_PIXELS:
            f = math.sqrt(DETECT_PIXELS / (h * w))
            small = np.asarray(Image.fromarray(rgb).resize((round(w * f), round(h * f)), Image.Resampling.BILINEAR))
            boxes, scores, _ = self._detector.run(small, 0, 0.0)
            if boxes:
                rect = self._dlib.rectangle
                return [rect(round(b.left() / f), round(b.top() / f), round(b.right() / f), round(b.bottom() / f))
                        for b in boxes], list(scores)
        boxes, scores, _ = self._detector.run(rgb, 0, 0.0)
        if not boxes and h * w <= UPSAMPLE_BELOW:
            boxes, scores, _ = self._detector.run(rgb, 1, 0.0)
        return list(boxes), list(scores)

    def faces(self, rgb: np.ndarray, upsample: int | None = None) -> list[Face]:
        rgb = np.ascontiguousarray(rgb)
        boxes, scores = self._detect(rgb, upsample)
        if not boxes:
            return []
        ranked = sorted(zip(boxes, scores, strict=True), key=lambda b: b[0].area(), reverse=True)[:MAX_FACES]
        shapes = self._dlib.full_object_detections()
        for box, _ in ranked:
            shapes.append(self._landmarks(rgb, box))
        codes = np.asarray(self._encoder.compute_face_descriptor(rgb, shapes), dtype=np.float32)
        h, w = rgb.shape[:2]
        return [
            Face((max(0, b.left()), max(0, b.top()), min(w, b.right()), min(h, b.bottom())), float(s), unit(c))
            for (b, s), c in zip(ranked, codes, strict=True)
        ]


def load_face_model(spec: str, root: Path | None) -> FaceModel:
    """The model `ALPHAAVATAR_PERSONA_FACE_MODEL` names (blocking: loads weights)."""
    if spec == "dlib":
        model: FaceModel = DlibFaces()
    elif spec == "insightface":
        from .insight import InsightFaces

        if root is None:
            raise UserError("ALPHAAVATAR_PERSONA_FACE_MODEL=insightface needs ALPHAAVATAR_PERSONA_INSIGHTFACE_ROOT.")
        model = InsightFaces(root)
    else:
        raise UserError(f"ALPHAAVATAR_PERSONA_FACE_MODEL must be 'dlib' or 'insightface', not {spec!r}.")
    log.info("face model loaded", extra={"fields": {"model": model.name, "dim": model.dim}})
    return model
