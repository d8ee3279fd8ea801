"""WAV folders (the Speech Commands layout) -> log-mel features.

``DIR/<word>/<speaker>_nohash_<n>.wav``: 16 kHz mono PCM. ``validation_list.txt`` and
``testing_list.txt`` in DIR (paths relative to DIR) decide the split when present; otherwise a
seeded split by speaker id keeps every speaker in one split. Clips are padded or cropped to 1 s.
Files that are corrupt, not 16 kHz, not mono or empty, and anything named ``*.wav`` that is not a
regular file (a FIFO would block the read), are skipped and counted, never fatal.
"""

from __future__ import annotations

import hashlib
import os
import stat
import wave
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archcalc.data.arrays import SPLITS, SpeechData
from archcalc.data.features import SAMPLE_RATE, fit_clip, logmel
from archcalc.errors import DataError, UsageError


@dataclass
class PrepareReport:
    """What was used and what was skipped, with the reason for each skipped file."""

    used: dict[str, int] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> one file with it

    def skip(self, path: Path, reason: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, str(path))


class BadWav(Exception):
    pass


def read_wav(path: Path) -> np.ndarray:
    """Mono 16 kHz PCM as floats in [-1, 1]; BadWav says why a file cannot be used."""
    try:
        with wave.open(str(path), "rb") as handle:
            rate, channels, width, frames = (handle.getframerate(), handle.getnchannels(),
                                             handle.getsampwidth(), handle.getnframes())
            raw = handle.readframes(frames)
    except (wave.Error, EOFError, OSError) as exc:
        raise BadWav(f"corrupt ({exc})" if str(exc) else "corrupt") from None
    if channels != 1:
        raise BadWav(f"{channels} channels, not mono")
    if rate != SAMPLE_RATE:
        raise BadWav(f"{rate} Hz, not {SAMPLE_RATE} Hz")
    if frames == 0 or not raw:
        raise BadWav("empty")
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2**31
    else:
        raise BadWav(f"{8 * width}-bit samples are not supported")
    return samples


def speaker_of(path: Path) -> str:
    return path.name.split("_nohash_")[0]


def seeded_split(speaker: str, seed: int, val_percent: int = 10, test_percent: int = 10) -> str:
    """A stable split from a hash of the speaker id and the seed."""
    bucket = int(hashlib.sha1(f"{seed}:{speaker}".encode()).hexdigest(), 16) % 100
    if bucket < val_percent:
        return "val"
    if bucket < val_percent + test_percent:
        return "test"
    return "train"


def _read_list(path: Path) -> set[str]:
    """The paths listed in ``validation_list.txt`` or ``testing_list.txt``; none when it is absent."""
    if not path.exists():
        return set()
    if not path.is_file():
        raise DataError("is a folder, not a list of files" if path.is_dir() else "is not a regular file",
                        source=str(path))
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise DataError(f"cannot be read ({exc.strerror or exc})", source=str(path)) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise DataError(f"line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                        f"{exc.start})", source=str(path)) from None
    return {line.strip() for line in text.splitlines() if line.strip()}


def check_words(words: list[str]) -> None:
    """Each word names a folder inside the data folder: a plain name, given once."""
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    for word in words:
        if word in (".", "..") or any(sep in word for sep in seps) or "\0" in word:
            raise UsageError(f"--words: '{word}' is not a plain folder name (no path separators, "
                             "not . or ..); each word names a folder inside the data folder")
        if words.count(word) > 1:
            raise UsageError(f"--words: '{word}' twice; each word is one class")


def wav_files(folder: Path, report: PrepareReport) -> list[Path]:
    """The folder's ``*.wav`` regular files; anything else (a FIFO, a folder) is skipped and counted."""
    files = []
    for path in sorted(folder.glob("*.wav")):
        try:
            regular = stat.S_ISREG(path.stat().st_mode)
        except OSError:
            regular = False
        if regular:
            files.append(path)
        else:
            report.skip(path, "not a regular file")
    return files


def prepare(root: str | Path, words: list[str], seed: int = 0, device: str = "cpu",
            progress: Callable[[int, int], None] | None = None) -> tuple[SpeechData, PrepareReport]:
    """Read every WAV of the given words, split, pad/crop to 1 s and compute log-mel features."""
    root = Path(root)
    check_words(words)
    if not root.is_dir():
        raise DataError("not a directory", source=str(root))
    missing = [w for w in words if not (root / w).is_dir()]
    if missing:
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
        raise DataError(f"no folder for {', '.join(missing)} (folders: {', '.join(found) or 'none'})",
                        source=str(root))
    val_list, test_list = _read_list(root / "validation_list.txt"), _read_list(root / "testing_list.txt")
    use_lists = bool(val_list or test_list)
    report = PrepareReport()
    files = [(label, path) for label, word in enumerate(words) for path in wav_files(root / word, report)]
    clips: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    labels: dict[str, list[int]] = {s: [] for s in SPLITS}
    for i, (label, path) in enumerate(files, start=1):
        try:
            samples = read_wav(path)
        except BadWav as exc:
            report.skip(path, str(exc).split(" (")[0] if str(exc).startswith("corrupt") else str(exc))
            continue
        rel = path.relative_to(root).as_posix()
        if use_lists:
            split = "val" if rel in val_list else "test" if rel in test_list else "train"
        else:
            split = seeded_split(speaker_of(path), seed)
        clips[split].append(fit_clip(samples))
        labels[split].append(label)
        if progress:
            progress(i, len(files))
    empty = [s for s in SPLITS if not clips[s]]
    if empty:
        raise DataError(f"no usable clips for the {', '.join(empty)} split(s) "
                        f"({sum(report.skipped.values())} files skipped)", source=str(root))
    X = {s: logmel(np.stack(clips[s]), device=device) for s in SPLITS}
    y = {s: np.array(labels[s], dtype=np.int64) for s in SPLITS}
    report.used = {s: len(labels[s]) for s in SPLITS}
    how = "list files" if use_lists else f"speaker split, seed {seed}"
    return SpeechData(X=X, y=y, classes=tuple(words), source=f"{root} ({how})"), report
