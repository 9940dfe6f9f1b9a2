"""The ``pacer`` command (Typer)."""
