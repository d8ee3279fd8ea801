"""Log-mel features in torch: 1 s of 16 kHz audio -> 101 frames x 40 log-mel energies.

25 ms Hann window (400 samples) zero-padded to a 512-point FFT, 10 ms hop (160 samples),
centred frames (zero padding at both ends: 1 + 16000/160 = 101 frames), power spectrum, 40
Slaney-style mel filters from 0 to 8 kHz (the librosa defaults), natural log with a floor.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # 1 s
N_FFT = 512
WIN_LENGTH = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms
N_MELS = 40
N_FRAMES = 1 + CLIP_SAMPLES // HOP_LENGTH  # 101
LOG_FLOOR = 1e-6  # log(max(mel, floor)): silence maps to log(1e-6) ~ -13.8, not -inf


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    mel = hz / f_sp
    above = hz >= min_log_hz
    mel[above] = min_log_mel + np.log(hz[above] / min_log_hz) / logstep
    return mel


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    hz = f_sp * mel
    above = mel >= min_log_mel
    hz[above] = min_log_hz * np.exp(logstep * (mel[above] - min_log_mel))
    return hz


@lru_cache(maxsize=4)
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters with Slaney area normalization, shape (n_mels, n_fft // 2 + 1)."""
    fmax = sr / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(np.array([fmin]))[0], hz_to_mel(np.array([fmax]))[0],
                                  n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def logmel(waves: Any, device: str = "cpu", batch: int = 1024) -> np.ndarray:
    """(N, 16000) float waveforms in [-1, 1] -> (N, 101, 40) float32 log-mel features."""
    import torch

    waves_t = torch.as_tensor(np.asarray(waves, dtype=np.float32))
    if waves_t.ndim != 2 or waves_t.shape[1] != CLIP_SAMPLES:
        raise ValueError(f"expected (N, {CLIP_SAMPLES}) waveforms, got {tuple(waves_t.shape)}")
    window = torch.hann_window(WIN_LENGTH, periodic=True, device=device)
    fbank = torch.as_tensor(mel_filterbank(), device=device)
    out = []
    with torch.inference_mode():
        for start in range(0, waves_t.shape[0], batch):
            chunk = waves_t[start:start + batch].to(device)  # (B, L)
            spec = torch.stft(chunk, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                              window=window, center=True, pad_mode="constant", return_complex=True)
            power = spec.real.square() + spec.imag.square()  # (B, 257, 101)
            mel = torch.matmul(fbank, power)  # (B, 40, 101)
            out.append(torch.log(torch.clamp(mel, min=LOG_FLOOR)).transpose(1, 2).cpu())
    if not out:
        return np.zeros((0, N_FRAMES, N_MELS), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32, copy=False)


def fit_clip(wave: np.ndarray, length: int = CLIP_SAMPLES) -> np.ndarray:
    """Pad with zeros at the end, or crop, to exactly ``length`` samples."""
    if wave.shape[0] >= length:
        return wave[:length]
    return np.pad(wave, (0, length - wave.shape[0]))
