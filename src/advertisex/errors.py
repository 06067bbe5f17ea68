"""The exception tree: one root, a few meaningful children, transient vs terminal."""

from __future__ import annotations


class AdvertisexError(Exception):
    """Root of every error advertisex raises on purpose.

    `transient` tells retry logic whether trying again later may succeed.
    """

    transient: bool = False

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class ConfigError(AdvertisexError):
    """A setting or option is wrong; the message says what to fix."""


class InputError(AdvertisexError):
    """An input (file, payload) cannot be read at all."""


class SourceError(AdvertisexError):
    """A source (folder, HTTP, Kafka) failed while being read."""

    transient = True


class StoreError(AdvertisexError):
    """The store cannot be opened or written."""
