"""insightface buffalo_l with onnxruntime alone: SCRFD detection (det_10g.onnx) and ArcFace
recognition (w600k_r50.onnx), from a local folder (the models' licence is non-commercial).

The insightface package itself is not used: it needs OpenCV with GUI libraries and adds a model
licence layer; the models are plain ONNX, and their pre/post-processing is below.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mcp_servers.core.errors import UserError

from .decisions import INSIGHTFACE_FACE
from .faces import MAX_FACES, Face, FaceModel
from .vectors import unit
from .workers import onnx_session

DETECTOR = "det_10g.onnx"
RECOGNIZER = "w600k_r50.onnx"
DET_SIZE = 640
STRIDES = (8, 16, 32)
ANCHORS = 2
# Where ArcFace expects the eyes, nose tip and mouth corners in its 112 x 112 crop.
ARCFACE_POINTS = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift) taking src points closest to dst (Umeyama)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d0.T @ s0 / len(src))
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / max((s0**2).sum() / len(src), 1e-12))
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.4) -> list[int]:
    order, keep = list(np.argsort(-scores)), []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = np.array(order, dtype=np.int64)
        if not len(rest):
            break
        xx1, yy1 = np.maximum(boxes[i, 0], boxes[rest, 0]), np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2, yy2 = np.minimum(boxes[i, 2], boxes[rest, 2]), np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = [int(j) for j, o in zip(rest, overlap, strict=True) if o <= iou]
    return keep


class InsightFaces(FaceModel):
    name = "insightface-buffalo_l"
    dim = 512
    thresholds = INSIGHTFACE_FACE
    score_threshold = 0.5

    def __init__(self, root: Path):
        folder = root / "buffalo_l" if (root / "buffalo_l").is_dir() else root
        missing = [f for f in (DETECTOR, RECOGNIZER) if not (folder / f).is_file()]
        if missing:
            raise UserError(f"{folder} lacks {', '.join(missing)} (insightface buffalo_l).")
        self._det = onnx_session(folder / DETECTOR)
        self._rec = onnx_session(folder / RECOGNIZER)
        if len(self._det.get_outputs()) != 3 * len(STRIDES):
            raise UserError(f"{DETECTOR} is not an SCRFD detector with landmarks (9 outputs).")
        self.dim = int(self._rec.get_outputs()[0].shape[-1])

    def _detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        scale = DET_SIZE / max(h, w)
        nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
        canvas = np.zeros((DET_SIZE, DET_SIZE, 3), dtype=np.float32)
        canvas[:nh, :nw] = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR))
        blob = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None]
        outs = self._det.run(None, {self._det.get_inputs()[0].name: blob})
        n = len(STRIDES)
        all_boxes, all_scores, all_kps = [], [], []
        for i, stride in enumerate(STRIDES):
            scores, dist, kps = (np.asarray(outs[i + k * n]).reshape(-1, d) for k, d in ((0, 1), (1, 4), (2, 10)))
            side = DET_SIZE // stride
            centres = np.stack(list(np.mgrid[:side, :side][::-1]), axis=-1).reshape(-1, 2).astype(np.float32) * stride
            centres = np.repeat(centres, ANCHORS, axis=0)
            hit = scores[:, 0] >= self.score_threshold
            c, d, k = centres[hit], dist[hit] * stride, kps[hit] * stride
            all_boxes.append(np.hstack([c - d[:, :2], c + d[:, 2:]]))
            all_kps.append((np.tile(c, 5) + k).reshape(-1, 5, 2))
            all_scores.append(scores[hit, 0])
        boxes, scores, kps = np.vstack(all_boxes), np.concatenate(all_scores), np.vstack(all_kps)
        keep = nms(boxes, scores)
        return boxes[keep] / scale, scores[keep], kps[keep] / scale

    def _encode(self, rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
        m = np.vstack([similarity_transform(points, ARCFACE_POINTS), [0, 0, 1]])
        inv = np.linalg.inv(m)[:2].ravel()  # PIL maps output pixels back to input pixels
        crop = Image.fromarray(rgb).transform((112, 112), Image.Transform.AFFINE, tuple(inv), Image.Resampling.BILINEAR)
        blob = ((np.asarray(crop, dtype=np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
        return unit(np.asarray(self._rec.run(None, {self._rec.get_inputs()[0].name: blob})[0])[0])

    def faces(self, rgb: np.ndarray, upsample: int | None = None) -> list[Face]:
        h, w = rgb.shape[:2]
        boxes, scores, kps = self._detect(rgb)
        order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[:MAX_FACES]
        return [
            Face((max(0.0, boxes[i, 0]), max(0.0, boxes[i, 1]), min(float(w), boxes[i, 2]), min(float(h), boxes[i, 3])),
                 float(scores[i]), self._encode(rgb, kps[i]))
            for i in order
        ]
