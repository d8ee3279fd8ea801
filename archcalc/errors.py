"""Errors a user can cause. Each carries the exit code the CLI returns for it."""

from __future__ import annotations

from collections.abc import Mapping


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
    """A bad value given to archcalc: an argument of the Python API, or the flag that carries it.

    The message names no flag. ``option`` names the input at fault by its Python name
    (``"target"``, ``"symbol"``, ``"max_macs"``, ``"values"``), ``subject`` the value as shown, and
    ``fix`` an input that would resolve it; ``str()`` reads ``target 'x': ...``, while the CLI
    phrases the same error with its flags (``--target 'x': ...``) through ``phrased``.
    """

    def __init__(self, message: str, *, source: str | None = None, option: str | None = None,
                 subject: str | None = None, fix: str | None = None) -> None:
        self.option = option
        self.subject = subject
        self.fix = fix
        super().__init__(message, source=source)
        self.args = (self.phrased(),)

    def phrased(self, names: Mapping[str, str] | None = None) -> str:
        """The one-line text, each input called as ``names`` says (default: its Python name)."""
        names = names or {}
        text = self.message
        if self.fix and self.fix in names:  # the API's caller knows how to bind; the CLI names the flag
            text += f" with {names[self.fix]}"
        if self.option:
            head = names.get(self.option, self.option)
            text = f"{head} {self.subject}: {text}" if self.subject else f"{head}: {text}"
        return f"{self.source}: {text}" if self.source else text


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
