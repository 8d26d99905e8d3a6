"""Errors that name the file and the field that was wrong."""
from __future__ import annotations

import os


class TagvisError(Exception):
    """Base class of every error tagvis raises on purpose."""


class DataFormatError(TagvisError, ValueError):
    """Input data (dataset file, results file, video, checkpoint) is not what the format says.

    The message reads ``<file>: <field>: <what was expected>``.
    """

    def __init__(self, path: str | os.PathLike | None, field: str | None, message: str):
        self.path = None if path is None else os.fspath(path)
        self.field = field
        parts = [p for p in (self.path, field) if p]
        super().__init__(": ".join(parts + [message]))


class CheckpointError(DataFormatError):
    """A checkpoint that does not fit the architecture or class count asked for."""


class Interrupted(TagvisError):
    """The user interrupted a command (Ctrl-C); the CLI prints the message and exits with status 130."""

    exit_code = 130


class DataWarning(UserWarning):
    """Input that is accepted as the official tools accept it, but probably not what the user meant."""
