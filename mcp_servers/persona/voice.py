"""Speaker embeddings: resemblyzer (default; weights in its wheel) or a wespeaker-format ONNX model.

Every call runs on one worker thread with one torch / onnxruntime thread: measured here, one thread
embedded 2.5 s of speech in 18 ms and was far steadier under load than two.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mcp_servers.core.errors import UserError

from .audio import SAMPLE_RATE
from .decisions import RESEMBLYZER, WESPEAKER, LengthCurve

log = logging.getLogger(__name__)
T = TypeVar("T")


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice", initializer=_one_thread)


async def run(fn: Callable[..., T], *args: Any) -> T:
    """Run voice work (decoding, embedding) on the voice worker thread."""
    return await asyncio.get_running_loop().run_in_executor(_worker, fn, *args)


def onnx_session(path: Path) -> Any:
    """An onnxruntime CPU session on one thread (steadier under load, like the torch models)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def unit(v: np.ndarray) -> np.ndarray:
    """Rows (or one vector) scaled to length 1."""
    v = np.asarray(v, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


class VoiceModel(ABC):
    """One speaker-embedding model: unit vectors for utterances and for sliding windows."""

    name: str
    dim: int
    curve: LengthCurve

    @abstractmethod
    def embed(self, speech: np.ndarray) -> np.ndarray:
        """A unit vector for one utterance (16 kHz float32, silences already trimmed)."""

    @abstractmethod
    def windows(self, wav: np.ndarray, hop: float) -> tuple[np.ndarray, np.ndarray, int]:
        """(unit vectors, start samples, window length in samples) for windows every `hop` seconds."""


class Resemblyzer(VoiceModel):
    """resemblyzer's GE2E LSTM, averaging 1.6 s partial embeddings taken 3 times a second.

    Its default is 1.3 partials a second; 3 a second halved the dev-split EER (1.03 % -> 0.52 %,
    no gain beyond) for about 1.7x the compute. The mel spectrogram is resemblyzer's (librosa's
    filters, Hann window, centred frames) computed with one numpy FFT: equal to 1e-7, and cheaper
    than librosa's general path on a busy core.
    """

    name = "resemblyzer"
    dim = 256
    curve = RESEMBLYZER
    rate = 3.0
    n_fft, hop = 400, 160  # 25 ms windows every 10 ms at 16 kHz

    def __init__(self) -> None:
        import librosa
        from resemblyzer import VoiceEncoder
        from scipy.signal import get_window

        self._encoder = VoiceEncoder("cpu", verbose=False)
        self._encoder.eval()
        self._filters = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=self.n_fft, n_mels=40).astype(np.float32).T
        self._window = get_window("hann", self.n_fft, fftbins=True).astype(np.float32)

    def _mel(self, wav: np.ndarray) -> np.ndarray:
        padded = np.pad(wav, self.n_fft // 2)
        frames = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft)[:: self.hop]
        power = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2
        return np.asarray(power @ self._filters, dtype=np.float32)

    def _partials(self, wav: np.ndarray, rate: float, min_coverage: float) -> tuple[np.ndarray, list[slice]]:
        import torch

        wav_slices, mel_slices = self._encoder.compute_partial_slices(len(wav), rate, min_coverage)
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
        mel = self._mel(wav)
        with torch.no_grad():
            partials = self._encoder(torch.from_numpy(np.stack([mel[s] for s in mel_slices]))).numpy()
        return partials, wav_slices

    def embed(self, speech: np.ndarray) -> np.ndarray:
        partials, _ = self._partials(speech, self.rate, 0.75)
        return unit(partials.mean(axis=0))

    def windows(self, wav: np.ndarray, hop: float) -> tuple[np.ndarray, np.ndarray, int]:
        partials, slices = self._partials(wav, 1.0 / hop, 0.5)
        starts = np.array([s.start for s in slices], dtype=np.int64)
        return unit(partials), starts, int(slices[0].stop - slices[0].start)


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


def load_voice_model(spec: str, models_dir: Path) -> VoiceModel:
    """The model `ALPHAAVATAR_PERSONA_VOICE_MODEL` names (blocking: loads weights)."""
    if spec == "resemblyzer":
        model: VoiceModel = Resemblyzer()
    elif spec == "wespeaker":
        from .config import WESPEAKER_FILE

        model = WeSpeaker(models_dir / WESPEAKER_FILE)
    else:
        model = WeSpeaker(Path(spec).expanduser())
    model.embed(np.zeros(SAMPLE_RATE, dtype=np.float32) + 1e-3 * np.sin(np.arange(SAMPLE_RATE, dtype=np.float32)))
    log.info("voice model loaded", extra={"fields": {"model": model.name, "dim": model.dim}})
    return model
