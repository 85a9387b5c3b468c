"""The errors a user can act on; the CLI prints them as one line and exits 2."""

from __future__ import annotations


class RecipeError(Exception):
    """A recipe or its inputs cannot be used; ``str()`` is the one line to show the user."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file, self.key, self.message = file, key, message
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


class BuildError(Exception):
    """The build cannot start (output folder in the way, inputs unreadable)."""


class PublishError(Exception):
    """Publishing was refused; the message says why and what to do."""
