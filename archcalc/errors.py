"""Errors a user can cause. Each carries the exit code the CLI returns for it."""

from __future__ import annotations


class ArchcalcError(Exception):
    """Base of every error archcalc reports as one line, without a traceback."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.message = message
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class SpecError(ArchcalcError):
    """A spec file that cannot be read or validated."""


class ShapeError(ArchcalcError):
    """A size that becomes impossible (<= 0, or contradicting a stated size)."""


class UsageError(ArchcalcError):
    """A bad command-line value (e.g. --set)."""


class DataError(ArchcalcError):
    """A data file that is missing, malformed or inconsistent."""


class TorchMissingError(ArchcalcError):
    """torch (or torchinfo) is needed but not installed."""


class CheckError(ArchcalcError):
    """An expectation or cross-check that did not hold."""

    exit_code = 1


class TorchRefusedError(CheckError):
    """torch refused to build a layer archcalc accepted: a bug in archcalc, reported as a failed check."""

    def __init__(self, label: str, torch_message: str) -> None:
        self.label = label
        self.torch_message = torch_message
        super().__init__(f"{label}: torch refused it: {torch_message}")
