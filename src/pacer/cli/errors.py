"""The one place where a user's mistake becomes ``error: …`` on stderr and exit code 2.

Every mistake a user can fix is raised as a ``PacerError`` where it is found (the settings, the
store's URL, a job file, an option), so this handler needs no list of library exceptions and
cannot mistake a bug for a mistake: anything else keeps its traceback and exit code 1.
*Rejected:* catching ``Exception`` here and printing its message, which would hide every bug
behind a one-line error.
"""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from pacer.domain.errors import PacerError


class PacerGroup(TyperGroup):
    """The ``pacer`` command group; every subcommand runs inside its ``invoke``."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click.Context
        try:
            return super().invoke(ctx)
        except PacerError as exc:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(2) from exc


def invalid(exc: ValidationError, origin: str = "") -> PacerError:
    """A pydantic refusal as ``field: reason`` lines (prefixed with ``origin``), without
    pydantic's own framing and links."""
    prefix = f"{origin}: " if origin else ""
    lines = [
        f"{prefix}{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
        for error in exc.errors()
    ]
    return PacerError("\n".join(lines))
