"""Which backend a setting names, loaded (blocking: weights are read; call on the modality's worker).

A new backend: subclass `VoiceModel` (voice.py) or `FaceModel` (faces.py) in a module of its own
and name it here."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mcp_servers.core.errors import UserError

from .audio import SAMPLE_RATE
from .config import WESPEAKER_FILE
from .face_dlib import DlibFaces
from .face_insightface import InsightFaces
from .faces import FaceModel
from .voice import VoiceModel
from .voice_resemblyzer import Resemblyzer
from .voice_wespeaker import WeSpeaker

log = logging.getLogger(__name__)


def load_voice_model(spec: str, models_dir: Path) -> VoiceModel:
    """The model `ALPHAAVATAR_PERSONA_VOICE_MODEL` names: 'resemblyzer', 'wespeaker' or an ONNX path."""
    if spec == "resemblyzer":
        model: VoiceModel = Resemblyzer()
    elif spec == "wespeaker":
        model = WeSpeaker(models_dir / WESPEAKER_FILE)
    else:
        model = WeSpeaker(Path(spec).expanduser())
    model.embed(np.zeros(SAMPLE_RATE, dtype=np.float32) + 1e-3 * np.sin(np.arange(SAMPLE_RATE, dtype=np.float32)))
    log.info("voice model loaded", extra={"fields": {"model": model.name, "dim": model.dim}})
    return model


def load_face_model(spec: str, root: Path | None) -> FaceModel:
    """The model `ALPHAAVATAR_PERSONA_FACE_MODEL` names: 'dlib' or 'insightface' (from `root`)."""
    if spec == "dlib":
        model: FaceModel = DlibFaces()
    elif spec == "insightface":
        if root is None:
            raise UserError("ALPHAAVATAR_PERSONA_FACE_MODEL=insightface needs ALPHAAVATAR_PERSONA_INSIGHTFACE_ROOT.")
        model = InsightFaces(root)
    else:
        raise UserError(f"ALPHAAVATAR_PERSONA_FACE_MODEL must be 'dlib' or 'insightface', not {spec!r}.")
    log.info("face model loaded", extra={"fields": {"model": model.name, "dim": model.dim}})
    return model
