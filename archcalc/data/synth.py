"""The synthesized default data set: real speech from eSpeak NG, made deterministic from a seed.

Recipe (generator version 1): the words yes/no/up, 8 English voices x 49 human-like variants,
rate 120-240 words/min, pitch 10-90, pitch range 10-90, the word at a random offset in a 1 s clip;
with probability 0.8 a distractor word in another voice at -10..0 dB; white, pink or brown noise
at an SNR of 0-20 dB; a gain of -6..+6 dB. Every random choice is drawn up front, in the parent
process, from one seeded generator; workers synthesize fixed batches of jobs, each batch in a
fresh process (eSpeak keeps static state across re-initialization), so the arrays are identical
on every run whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from archcalc.data.arrays import SPLITS, SpeechData, load_data, save_npz
from archcalc.data.features import CLIP_SAMPLES, SAMPLE_RATE, logmel

GENERATOR_VERSION = 1
WORDS = ("yes", "no", "up")
DISTRACTORS = ("down", "left", "right", "on", "off", "stop", "go", "dog", "bird", "house", "tree",
               "six", "wow", "bed", "cat", "happy", "marvin", "sheila", "seven", "nine")
VOICES = ("en", "en-us", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp",
          "en-us-nyc")
VARIANTS = ("Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Diogo", "Henrique", "Hugo", "Jacky",
            "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "Reed", "adam", "anika", "announcer",
            "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward",
            "f1", "f2", "f3", "f4", "f5", "grandma", "grandpa", "gustave", "ian", "iven", "john",
            "linda", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
DEFAULT_N = 9000
DEFAULT_SEED = 0
BATCH = 500  # jobs per worker process; fixed, so results do not depend on the worker count


@dataclass(frozen=True)
class Utterance:
    word: str
    voice: str
    variant: str
    rate: int
    pitch: int
    pitch_range: int
    seed: int
    offset: float  # where the word starts, as a fraction of the free space in the clip
    level_db: float = 0.0  # relative to the target word (distractors only)


@dataclass(frozen=True)
class Job:
    target: Utterance
    distractor: Utterance | None
    noise: str  # white, pink or brown
    snr_db: float
    gain_db: float
    seed: int


def split_sizes(n: int) -> dict[str, int]:
    """2/3 train, 1/6 validation, 1/6 test (validation and test equal)."""
    val = n // 6
    return {"train": n - 2 * val, "val": val, "test": val}


def plan(n: int, seed: int) -> dict[str, tuple[list[Job], np.ndarray]]:
    """Every random choice of the data set, drawn from one generator: jobs and labels per split."""
    rng = np.random.default_rng([seed, GENERATOR_VERSION])
    out = {}
    for split, size in split_sizes(n).items():
        labels = np.arange(size) % len(WORDS)  # balanced: counts differ by at most one
        rng.shuffle(labels)
        jobs = [_job(rng, WORDS[label]) for label in labels]
        out[split] = (jobs, labels.astype(np.int64))
    return out


def _utterance(rng: np.random.Generator, word: str, level_db: float = 0.0) -> Utterance:
    return Utterance(word=word, voice=str(rng.choice(VOICES)), variant=str(rng.choice(VARIANTS)),
                     rate=int(rng.integers(120, 241)), pitch=int(rng.integers(10, 91)),
                     pitch_range=int(rng.integers(10, 91)), seed=int(rng.integers(1, 2**31 - 1)),
                     offset=float(rng.random()), level_db=level_db)


def _job(rng: np.random.Generator, word: str) -> Job:
    target = _utterance(rng, word)
    distractor = None
    if rng.random() < 0.8:
        distractor = _utterance(rng, str(rng.choice(DISTRACTORS)), float(rng.uniform(-10, 0)))
    return Job(target=target, distractor=distractor, noise=str(rng.choice(["white", "pink", "brown"])),
               snr_db=float(rng.uniform(0, 20)), gain_db=float(rng.uniform(-6, 6)),
               seed=int(rng.integers(1, 2**31 - 1)))


# --------------------------------------------------------------------------- worker side

@lru_cache(maxsize=1)
def _resampling_filter() -> np.ndarray:
    """scipy's default resample_poly filter for 22,050 -> 16,000 Hz, designed once, not per call."""
    from scipy.signal import firwin

    down = 22050 // math.gcd(SAMPLE_RATE, 22050)
    return firwin(2 * 10 * down + 1, 1.0 / down, window=("kaiser", 5.0))


def _speak(engine: object, utt: Utterance) -> np.ndarray:
    """One utterance at 16 kHz, peak-normalized (some variants clip)."""
    from scipy.signal import resample_poly

    engine.set_voice(utt.voice, utt.variant)  # type: ignore[attr-defined]
    wave = engine.synthesize(utt.word, utt.rate, utt.pitch, utt.pitch_range, utt.seed)  # type: ignore[attr-defined]
    wave = resample_poly(wave, SAMPLE_RATE, 22050, window=_resampling_filter()).astype(np.float32)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    return wave / peak * 0.5 if peak > 0 else wave


def _place(clip: np.ndarray, wave: np.ndarray, offset: float, scale: float) -> None:
    if wave.shape[0] > CLIP_SAMPLES:  # longer than a second: keep the middle
        start = (wave.shape[0] - CLIP_SAMPLES) // 2
        wave = wave[start:start + CLIP_SAMPLES]
    begin = int(offset * (CLIP_SAMPLES - wave.shape[0]))
    clip[begin:begin + wave.shape[0]] += scale * wave


def _noise(rng: np.random.Generator, color: str) -> np.ndarray:
    white = rng.standard_normal(CLIP_SAMPLES)
    if color == "white":
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(CLIP_SAMPLES)
    freqs[0] = freqs[1]
    spectrum /= np.sqrt(freqs) if color == "pink" else freqs  # 1/f power, or 1/f^2 (brown)
    return np.fft.irfft(spectrum, n=CLIP_SAMPLES)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def render_job(engine: object, job: Job) -> np.ndarray:
    """The 1 s waveform of one job: word, distractor, noise at the SNR, gain."""
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float64)
    target = _speak(engine, job.target)
    _place(clip, target, job.target.offset, 1.0)
    speech_rms = _rms(clip)
    if job.distractor is not None:
        other = _speak(engine, job.distractor)
        scale = 10 ** (job.distractor.level_db / 20) * (_rms(target) / max(_rms(other), 1e-9))
        _place(clip, other, job.distractor.offset, scale)
    noise = _noise(np.random.default_rng(job.seed), job.noise)
    noise *= speech_rms / max(_rms(noise), 1e-12) / 10 ** (job.snr_db / 20)
    clip = (clip + noise) * 10 ** (job.gain_db / 20)
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


def synth_batch(jobs: list[Job]) -> np.ndarray:
    """Run in a fresh worker process: (len(jobs), 16000) waveforms."""
    from archcalc.data.espeak import ESpeak

    engine = ESpeak()
    return np.stack([render_job(engine, job) for job in jobs]) if jobs else np.zeros((0, CLIP_SAMPLES),
                                                                                     np.float32)


# --------------------------------------------------------------------------- parent side

def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def synthesize(n: int = DEFAULT_N, seed: int = DEFAULT_SEED, workers: int | None = None,
               progress: Callable[[int, int], None] | None = None, device: str = "cpu") -> SpeechData:
    """Make the data set: waveforms in worker processes, then log-mel features in torch."""
    if n < 6:
        raise ValueError("n must be at least 6 (one sample per class in validation and test)")
    planned = plan(n, seed)
    batches = [(split, jobs[i:i + BATCH]) for split, (jobs, _) in planned.items()
               for i in range(0, len(jobs), BATCH)]
    features: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    done = 0
    # "spawn": each batch starts from a clean interpreter, never a fork of a process using torch
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers or default_workers(), mp_context=context,
                             max_tasks_per_child=1) as pool:
        for (split, jobs), result in zip(batches, pool.map(synth_batch, [b for _, b in batches])):
            features[split].append(logmel(result, device=device))  # while workers go on
            done += len(jobs)
            if progress:
                progress(done, n)
    X = {s: np.concatenate(features[s]) for s in SPLITS}
    y = {s: planned[s][1] for s in SPLITS}
    meta = {"generator": f"espeak-ng synth v{GENERATOR_VERSION}", "seed": str(seed), "n": str(n)}
    return SpeechData(X=X, y=y, classes=WORDS, source=f"synthesized (n={n}, seed={seed})", meta=meta)


def cache_dir() -> Path:
    """``$ARCHCALC_CACHE_DIR``, else ``$XDG_CACHE_HOME/archcalc``, else ``~/.cache/archcalc``."""
    if os.environ.get("ARCHCALC_CACHE_DIR"):
        return Path(os.environ["ARCHCALC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "archcalc"


def cache_key(n: int, seed: int) -> str:
    """Everything the arrays depend on: size, seed, recipe and generator version."""
    recipe = {"version": GENERATOR_VERSION, "n": n, "seed": seed, "words": WORDS, "voices": VOICES,
              "variants": VARIANTS, "distractors": DISTRACTORS, "batch": BATCH}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def cached_path(n: int, seed: int) -> Path:
    return cache_dir() / f"speech-synth-v{GENERATOR_VERSION}-n{n}-s{seed}-{cache_key(n, seed)}.npz"


def default_data(n: int = DEFAULT_N, seed: int = DEFAULT_SEED, workers: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[SpeechData, bool]:
    """The cached synthesized set, made on first use; returns (data, made_now)."""
    path = cached_path(n, seed)
    if path.exists():
        data = load_data(path)
        return SpeechData(data.X, data.y, data.classes, source=str(path),
                          meta={"generator": f"espeak-ng synth v{GENERATOR_VERSION}"}), False
    data = synthesize(n, seed, workers, progress)
    save_npz(data, path)
    return SpeechData(data.X, data.y, data.classes, source=str(path), meta=data.meta), True


