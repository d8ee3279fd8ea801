"""Speech data: the course arrays, WAV folders turned into log-mel features, and a synthesized set."""

from archcalc.data.arrays import SPLITS, SpeechData, load_data, save_npz

__all__ = ["SPLITS", "SpeechData", "load_data", "save_npz"]
