"""wespeaker-format ONNX speaker models (ResNet34 / ERes2NetV2 / CAM++ exports) on onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcp_servers.core.errors import UserError

from .audio import SAMPLE_RATE
from .decisions import WESPEAKER
from .vectors import unit
from .voice import VoiceModel
from .workers import onnx_session


class WeSpeaker(VoiceModel):
    """A wespeaker-format ONNX model (ResNet34 / ERes2NetV2 / CAM++ exports): input (batch, frames, 80)
    Kaldi fbank with mean normalisation, output (batch, dim)."""

    curve = WESPEAKER
    window = 1.5  # seconds per sliding window in segmentation

    def __init__(self, path: Path):
        import kaldi_native_fbank as knf

        if not path.is_file():
            raise UserError(
                f"The speaker model {path} does not exist: run `alphaavatar download-files` or set "
                "ALPHAAVATAR_PERSONA_VOICE_MODEL to a wespeaker ONNX file."
            )
        self._session = onnx_session(path)
        spec = self._session.get_inputs()[0]
        if len(spec.shape) != 3 or spec.shape[-1] != 80:
            raise UserError(f"{path.name} takes input {spec.shape}, not (batch, frames, 80) fbank features.")
        self._input = spec.name
        self._fbank_options = knf.FbankOptions()
        self._fbank_options.frame_opts.dither = 0.0
        self._fbank_options.frame_opts.samp_freq = SAMPLE_RATE
        self._fbank_options.frame_opts.window_type = "hamming"
        self._fbank_options.mel_opts.num_bins = 80
        self.name = f"wespeaker-{path.stem}"
        self.dim = int(self._run(np.zeros((1, 100, 80), dtype=np.float32)).shape[-1])

    def _run(self, feats: np.ndarray) -> np.ndarray:
        return np.asarray(self._session.run(None, {self._input: feats.astype(np.float32)})[0])

    def fbank(self, wav: np.ndarray) -> np.ndarray:
        """(frames, 80) log-mel filterbank, Kaldi-compatible, on int16-scaled samples as wespeaker does."""
        import kaldi_native_fbank as knf

        fb = knf.OnlineFbank(self._fbank_options)
        fb.accept_waveform(SAMPLE_RATE, (wav * 32768.0).astype(np.float32))
        fb.input_finished()
        return np.array([fb.get_frame(i) for i in range(fb.num_frames_ready)], dtype=np.float32).reshape(-1, 80)

    def embed(self, speech: np.ndarray) -> np.ndarray:
        feats = self.fbank(speech)
        return unit(self._run((feats - feats.mean(axis=0))[None])[0])

    def windows(self, wav: np.ndarray, hop: float) -> tuple[np.ndarray, np.ndarray, int]:
        feats = self.fbank(wav)
        size, step = int(self.window * 100), max(1, round(hop * 100))
        starts = list(range(0, max(1, len(feats) - size + 1), step))
        out = []
        for s in starts:  # one at a time: exported models do not all take a batch of >1
            chunk = feats[s:s + size]
            out.append(self._run((chunk - chunk.mean(axis=0))[None])[0])
        return unit(np.stack(out)), np.array(starts, dtype=np.int64) * (SAMPLE_RATE // 100), int(self.window * SAMPLE_RATE)
