"""dlib's face detector and encoder (the default face backend; models from `face-recognition-models`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from .decisions import DLIB_FACE
from .faces import MAX_FACES, Face, FaceModel
from .vectors import unit

UPSAMPLE_BELOW = 1_100_000  # pixels: smaller images with no face found are searched again at 2x
DETECT_PIXELS = 600_000


class DlibFaces(FaceModel):
    """dlib's HOG detector, 5-point landmarks and ResNet encoder (LFW 99.38 %).

    HOG detection finds faces from about 80 px; upsampling doubles the cost, so it is used only
    when a small image shows no face at first, or when asked.
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
