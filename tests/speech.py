"""Real speech for tests: eSpeak NG synthesis through the library the `espeakng-loader` wheel
bundles (the same engine `character_bridge.espeak` binds), so no `espeak-ng` system package.
"""

from __future__ import annotations

import ctypes
import io

import numpy as np
import soundfile as sf

from character_bridge import espeak

POS_CHARACTER = 1
ENDPAUSE = 0x1000  # a short silence after the text, as the `espeak-ng` command adds
SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def synthesize(text: str, voice: str = "en") -> tuple[np.ndarray, int]:
    """`text` spoken at espeak's default rate and voice (as `espeak-ng -w`): int16 mono and its rate."""
    lib, rate = espeak.library()
    chunks: list[np.ndarray] = []

    @SYNTH_CALLBACK
    def collect(wav: ctypes._Pointer, n: int, _events: int) -> int:  # type: ignore[type-arg]
        if n > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    data = text.encode("utf-8")
    with espeak.LOCK:
        espeak.set_voice(lib, voice)
        lib.espeak_SetSynthCallback(collect)
        err = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, espeak.CHARS_UTF8 | ENDPAUSE, None, None)
        lib.espeak_Synchronize()
        lib.espeak_SetSynthCallback(None)
    if err != 0:
        raise RuntimeError(f"espeak-ng could not speak {text[:40]!r} (error {err})")
    return (np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)).astype(np.int16), rate


def wav_bytes(text: str, voice: str = "en") -> bytes:
    """`text` spoken, as a 16-bit WAV file."""
    samples, rate = synthesize(text, voice)
    out = io.BytesIO()
    sf.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()
