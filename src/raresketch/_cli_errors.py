"""The command line's one-line error (shared by :mod:`raresketch.cli` and its command groups)."""
from __future__ import annotations

import click

__all__ = ["CliError"]


class CliError(click.ClickException):
    """A one-line error: printed as ``raresketch: error: ...``, exit code 1."""

    def show(self, file=None) -> None:
        click.echo(f"raresketch: error: {self.message}", err=True)
