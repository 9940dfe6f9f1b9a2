"""``python -m pacer.cli`` runs the same command as ``pacer``."""

from pacer.cli.main import app

app()
