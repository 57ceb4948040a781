"""Exceptions that the CLI turns into one clear line and exit code 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input: a file that cannot be read, a wrong config key, a bad value.

    The message names the file (or key) and the problem; the CLI prints it without a
    traceback and exits with code 2.
    """


class ConfigError(InputError):
    """A config file or override that does not match the typed config."""


class MediaError(InputError):
    """A video or audio file that cannot be decoded or written."""


class DataError(InputError):
    """A dataset folder or clip that is incomplete or inconsistent."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message says what to do. Exit 1."""
