"""eSpeak NG as a library: the `espeakng-loader` wheel bundles libespeak-ng and its data, so
phonemes need no system package. One process-wide engine, bound with ctypes; espeak's state is
global and not thread-safe, so every call holds `LOCK`.
"""

from __future__ import annotations

import ctypes
import functools
import threading

LOCK = threading.Lock()

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of exiting the process
CHARS_UTF8 = 1
PHONEMES_SHOW = 0x01  # eSpeak's ASCII mnemonics, as the `espeak-ng -x` command prints them


class EspeakMissing(RuntimeError):
    """The espeak-ng library could not be loaded."""


@functools.cache
def library() -> tuple[ctypes.CDLL, int]:
    """The initialised engine and its sample rate (loaded once per process)."""
    try:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path()
    except (ImportError, OSError, RuntimeError) as exc:
        raise EspeakMissing(f"the espeak-ng library is not available ({exc}); pip install espeakng-loader") from None
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise EspeakMissing(f"the espeak-ng library did not initialise (data at {data})")
    return lib, rate


def set_voice(lib: ctypes.CDLL, voice: str) -> None:
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"espeak-ng has no voice {voice!r}")


def clause_phonemes(text: str, voice: str = "en-us") -> list[str]:
    """One string per clause, phonemes separated by '_' and words by spaces (as `espeak-ng -x --sep=_`).

    Lines are translated one by one, as the command reads `--stdin`.
    """
    lib, _ = library()
    mode = PHONEMES_SHOW | (ord("_") << 8)
    out: list[str] = []
    with LOCK:
        set_voice(lib, voice)
        for line in text.splitlines():
            buf = ctypes.create_string_buffer(line.encode("utf-8", "replace"))
            ptr = ctypes.c_char_p(ctypes.addressof(buf))
            while ptr.value:
                clause = lib.espeak_TextToPhonemes(ctypes.byref(ptr), CHARS_UTF8, mode)
                out.append((clause or b"").decode("utf-8", "replace").strip())
    return out
