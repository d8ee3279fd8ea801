"""Speech data: features, the synthesized set, WAV folders and array validation."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from archcalc.data.arrays import SpeechData, load_data, save_npz
from archcalc.data.features import (
    HOP_LENGTH,
    LOG_FLOOR,
    N_FFT,
    SAMPLE_RATE,
    WIN_LENGTH,
    hz_to_mel,
    logmel,
    mel_filterbank,
    mel_to_hz,
)
from archcalc.data.synth import plan, synthesize
from archcalc.errors import DataError

T = np.arange(SAMPLE_RATE) / SAMPLE_RATE


def sine(freq: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * T)).astype(np.float32)


# --------------------------------------------------------------------------- features

def test_feature_shape_is_exactly_101_by_40():
    assert logmel(np.zeros((3, SAMPLE_RATE), np.float32)).shape == (3, 101, 40)
    assert logmel(np.zeros((0, SAMPLE_RATE), np.float32)).shape == (0, 101, 40)
    with pytest.raises(ValueError):
        logmel(np.zeros((2, 8000)))


def test_silence_sits_at_the_floor():
    assert np.allclose(logmel(np.zeros((1, SAMPLE_RATE), np.float32)), np.log(LOG_FLOOR))


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0, 6000.0])
def test_a_sine_puts_its_energy_in_the_expected_mel_bin(freq):
    feats = logmel(sine(freq)[None])[0]  # (101, 40)
    centres = mel_to_hz(np.linspace(hz_to_mel(np.array([0.0]))[0], hz_to_mel(np.array([8000.0]))[0], 42))[1:-1]
    expected = int(np.argmin(np.abs(centres - freq)))
    assert abs(int(feats[10:90].mean(0).argmax()) - expected) <= 1


def test_features_match_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    clips = np.stack([sine(440), rng.normal(0, 0.1, SAMPLE_RATE).astype(np.float32),
                      np.concatenate([np.zeros(8000), sine(3000)[:8000]]).astype(np.float32)])
    ours = logmel(clips)
    for clip, feat in zip(clips, ours):
        mel = librosa.feature.melspectrogram(y=clip, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH,
                                             win_length=WIN_LENGTH, window="hann", center=True,
                                             pad_mode="constant", power=2.0, n_mels=40)
        reference = np.log(np.maximum(mel, LOG_FLOOR)).T
        assert np.max(np.abs(feat - reference)) < 1e-3  # stated tolerance: 0.001 in log units
    assert np.allclose(mel_filterbank(), librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=40),
                       atol=1e-7)


# --------------------------------------------------------------------------- synthesized set

def test_plan_is_balanced_and_deterministic():
    a, b = plan(600, 3), plan(600, 3)
    assert a["train"][0] == b["train"][0]
    for split, n in (("train", 400), ("val", 100), ("test", 100)):
        counts = np.bincount(a[split][1], minlength=3)
        assert counts.sum() == n and counts.max() - counts.min() <= 1
    assert plan(600, 4)["train"][0] != a["train"][0]


@pytest.fixture(scope="module")
def small_synth():
    return synthesize(24, seed=5, workers=2)


def test_synth_is_identical_on_every_run(small_synth):
    again = synthesize(24, seed=5, workers=1)  # another run, another worker count
    for split in ("train", "val", "test"):
        assert np.array_equal(small_synth.X[split], again.X[split])
        assert np.array_equal(small_synth.y[split], again.y[split])
    assert small_synth.digest() == again.digest()


def test_synth_holds_speech(small_synth):
    data = small_synth
    assert data.sizes() == {"train": 16, "val": 4, "test": 4}
    assert data.X["train"].shape == (16, 101, 40) and data.classes == ("yes", "no", "up")
    x = data.X["train"]
    # speech is far above the floor, and the loudest frame of each clip stands out from its median
    assert (x.max(axis=(1, 2)) > np.log(LOG_FLOOR) + 8).all()
    assert (x.max(axis=2).max(axis=1) - np.median(x.max(axis=2), axis=1) > 1).all()


def test_synth_cli_writes_and_info_reads(cli, tmp_path):
    out = tmp_path / "s.npz"
    result = cli("data", "synth", "--n", "12", "--seed", "1", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.exists() and "train" in result.stdout
    info = cli("data", "info", out, "--png", tmp_path / "ex.png", "--json")
    assert info.exit_code == 0
    import json
    doc = json.loads(info.stdout)
    assert doc["splits"]["train"]["n"] == 8 and doc["feature_shape"] == [101, 40]
    png = (tmp_path / "ex.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_default_set_is_cached(monkeypatch, tmp_path):
    from archcalc.data import synth

    monkeypatch.setenv("ARCHCALC_CACHE_DIR", str(tmp_path))
    data, made = synth.default_data(n=12, seed=2)
    assert made and synth.cached_path(12, 2).exists()
    again, made_again = synth.default_data(n=12, seed=2)
    assert not made_again and again.digest() == data.digest()
    assert synth.cached_path(12, 2).parent == tmp_path


# --------------------------------------------------------------------------- WAV folders

def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    if channels == 2:
        data = np.repeat(data, 2)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(data.tobytes())


@pytest.fixture
def wav_folder(tmp_path):
    root = tmp_path / "speech"
    freqs = {"yes": 500, "no": 1500, "up": 4000}
    for word, freq in freqs.items():
        for speaker in range(6):
            length = SAMPLE_RATE - 3000 if speaker % 2 else SAMPLE_RATE + 500  # pad and crop
            write_wav(root / word / f"spk{speaker}_nohash_0.wav", sine(freq)[:length] if speaker % 2
                      else np.concatenate([sine(freq), sine(freq)[:500]]))
    (root / "yes" / "broken_nohash_0.wav").write_bytes(b"RIFF\x00\x00garbage")
    write_wav(root / "no" / "slow_nohash_0.wav", sine(300)[:8000], rate=8000)
    write_wav(root / "up" / "wide_nohash_0.wav", sine(300), channels=2)
    write_wav(root / "up" / "void_nohash_0.wav", np.zeros(0))
    return root


def test_prepare_with_list_files(cli, wav_folder, tmp_path):
    (wav_folder / "validation_list.txt").write_text("yes/spk0_nohash_0.wav\nno/spk0_nohash_0.wav\n"
                                                    "up/spk0_nohash_0.wav\n")
    (wav_folder / "testing_list.txt").write_text("yes/spk1_nohash_0.wav\nno/spk1_nohash_0.wav\n"
                                                 "up/spk1_nohash_0.wav\n")
    out = tmp_path / "prepared.npz"
    result = cli("data", "prepare", wav_folder, "--words", "yes,no,up", "--out", out)
    assert result.exit_code == 0, result.output
    assert "train 12, val 3, test 3" in result.stdout
    assert "skipped 4 files" in result.stdout
    for reason in ("corrupt", "8000 Hz, not 16000 Hz", "2 channels, not mono", "empty"):
        assert f"1 {reason}" in result.stdout
    data = load_data(out)
    assert data.classes == ("yes", "no", "up") and data.X["val"].shape == (3, 101, 40)
    # each class's tone lands in its own mel bins
    peaks = [int(data.X["train"][data.y["train"] == c].mean(axis=(0, 1)).argmax()) for c in range(3)]
    assert peaks[0] < peaks[1] < peaks[2]


def test_seeded_speaker_split_is_stable_and_about_80_10_10():
    from archcalc.data.wav import seeded_split, speaker_of

    assert speaker_of(Path("yes/0a7c2a8d_nohash_3.wav")) == "0a7c2a8d"
    splits = [seeded_split(f"speaker{i}", seed=7) for i in range(3000)]
    assert splits == [seeded_split(f"speaker{i}", seed=7) for i in range(3000)]
    share = {s: splits.count(s) / 3000 for s in ("train", "val", "test")}
    assert 0.77 < share["train"] < 0.83 and 0.08 < share["val"] < 0.12 and 0.08 < share["test"] < 0.12
    assert splits != [seeded_split(f"speaker{i}", seed=8) for i in range(3000)]


def test_prepare_seeded_split_puts_each_speaker_in_one_split(wav_folder):
    from archcalc.data.wav import prepare, seeded_split

    seed = next(s for s in range(1000)
                if {seeded_split(f"spk{i}", s) for i in range(6)} == {"train", "val", "test"})
    _, report = prepare(wav_folder, ["yes", "no", "up"], seed=seed)
    expected = {split: 3 * sum(seeded_split(f"spk{i}", seed) == split for i in range(6))
                for split in ("train", "val", "test")}
    assert report.used == expected  # all three words of a speaker land in that speaker's split


def test_prepare_errors(cli, wav_folder, tmp_path):
    result = cli("data", "prepare", wav_folder, "--words", "yes,maybe", "--out", tmp_path / "x.npz")
    assert result.exit_code == 2 and "no folder for maybe" in result.stderr
    result = cli("data", "prepare", tmp_path / "nothing", "--out", tmp_path / "x.npz")
    assert result.exit_code == 2 and "not a directory" in result.stderr
    result = cli("data", "prepare", wav_folder, "--words", "yes", "--out", tmp_path / "x.npz")
    assert result.exit_code == 2 and "at least two words" in result.stderr


# --------------------------------------------------------------------------- loading

def arrays(n: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for split in ("train", "val", "test"):
        out[f"X_{split}"] = rng.normal(size=(n, 101, 40)).astype(np.float32)
        out[f"y_{split}"] = np.arange(n) % 3
    return out


def info_error(cli, path) -> str:
    result = cli("data", "info", path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1
    return result.stderr


def test_loads_npz_and_npy_folder(tmp_path):
    np.savez(tmp_path / "d.npz", **arrays())
    folder = tmp_path / "npy"
    folder.mkdir()
    for key, value in arrays().items():
        np.save(folder / f"{key}.npy", value)
    a, b = load_data(tmp_path / "d.npz"), load_data(folder)
    assert a.sizes() == b.sizes() == {"train": 6, "val": 6, "test": 6}
    assert a.digest() == b.digest() and a.classes == ("0", "1", "2")


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(X_train=np.array([object()] * 6, dtype=object)), "cannot be loaded without pickle"),
    (lambda d: d.update(X_val=np.zeros((6, 101, 39), np.float32)), "X_val has features (101, 39)"),
    (lambda d: d.update(X_test=np.zeros((6, 4040), np.float32)), "must have shape (n, frames, mels)"),
    (lambda d: d["X_train"].__setitem__((0, 0, 0), np.nan), "X_train holds 1 NaN or infinite values"),
    (lambda d: d.update(y_val=np.array([0, 1, 2, 3, 0, -1])), "y_val holds label -1"),
    (lambda d: d.update(y_test=np.arange(6) * 1.0), "y_test must hold integer class ids"),
    (lambda d: d.update(y_train=np.zeros(5, int)), "y_train has shape (5,), expected (6,)"),
    (lambda d: d.pop("y_test"), "missing arrays y_test"),
    (lambda d: d.update(classes=np.array(["yes", "no"])), "holds label 2, outside 0..1"),
])
def test_loading_rejects_bad_arrays(cli, tmp_path, change, message):
    d = arrays()
    change(d)
    np.savez(tmp_path / "bad.npz", **d)
    assert message in info_error(cli, tmp_path / "bad.npz")


def test_loading_rejects_non_npz(cli, tmp_path):
    (tmp_path / "x.npz").write_text("not a zip")
    assert "not a readable .npz" in info_error(cli, tmp_path / "x.npz")
    assert "no such file" in info_error(cli, tmp_path / "missing.npz")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "d.npz"
    good = SpeechData(X={s: np.zeros((3, 101, 40), np.float32) for s in ("train", "val", "test")},
                      y={s: np.arange(3) for s in ("train", "val", "test")}, classes=("a", "b", "c"))
    save_npz(good, path)
    before = path.read_bytes()

    def broken(handle, **arrays):
        handle.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(KeyboardInterrupt):
        save_npz(good, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]  # no temporary file left behind
    with pytest.raises(DataError):
        load_data(tmp_path / "nope.npz")


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os

    from archcalc.atomic import write_text

    path = write_text(tmp_path / "r.json", "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_every_voice_and_variant_of_the_recipe_exists():
    from archcalc.data.espeak import ESpeak, list_variants
    from archcalc.data.synth import VARIANTS, VOICES

    assert set(VARIANTS) <= set(list_variants())
    engine = ESpeak()
    assert engine.sample_rate == 22050
    for voice in VOICES:
        engine.set_voice(voice, VARIANTS[0])
    with pytest.raises(DataError, match="no variant 'M3'"):
        engine.set_voice("en-us", "M3")  # variants are case-sensitive; the fallback is caught
