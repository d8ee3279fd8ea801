"""A small ctypes binding to eSpeak NG (the library and voices ship in the espeakng-loader wheel).

eSpeak NG is not thread-safe and keeps static state that survives re-initialization, so callers
synthesize one utterance at a time, in a process of their own (see synth.py).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from archcalc.errors import DataError

AUDIO_OUTPUT_SYNCHRONOUS = 2
RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4  # espeak_PARAMETER
POS_CHARACTER = 1
CHARS_UTF8 = 1


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte),
                ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int),
                ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class ESpeak:
    """One initialized eSpeak NG engine in synchronous mode (22,050 Hz, 16-bit mono)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise DataError("speech synthesis needs espeakng-loader: pip install 'archcalc[data]'") from None
        self.lib = lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                                 espeakng_loader.get_data_path().encode(), 0)
        if self.sample_rate <= 0:
            raise DataError(f"eSpeak NG failed to initialize ({self.sample_rate})")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # must stay referenced while the library holds it
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, n: int, events: Any) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def set_voice(self, voice: str, variant: str | None = None) -> None:
        """Select ``voice`` (``en-us``) with a variant (``m3``); a silent fallback is an error."""
        name = f"{voice}+{variant}" if variant else voice
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise DataError(f"eSpeak NG has no voice {name!r}")
        current = self.lib.espeak_GetCurrentVoice().contents.identifier or b""
        # a misspelt variant (they are case-sensitive) falls back to the base voice without error
        if variant and not current.decode().endswith(f"+{variant}"):
            raise DataError(f"eSpeak NG has no variant {variant!r} (got {current.decode()!r})")

    def synthesize(self, text: str, rate: int, pitch: int, pitch_range: int, seed: int) -> np.ndarray:
        """Float samples in [-1, 1] at ``self.sample_rate``."""
        for param, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range), (VOLUME, 100)):
            self.lib.espeak_SetParameter(param, value, 0)
        self.lib.espeak_ng_SetRandSeed(seed)
        self._chunks.clear()
        data = text.encode() + b"\0"
        self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0


def list_variants() -> list[str]:
    """The variant names shipped with the voices (files under espeak-ng-data/voices/!v)."""
    import os

    import espeakng_loader

    folder = os.path.join(espeakng_loader.get_data_path(), "voices", "!v")
    return sorted(os.listdir(folder))
