"""Applying the Alembic migrations, at start and from ``pacer db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from pacer.stores.sqlalchemy.dialects import sync_url


def migrations_dir() -> Path:
    """The repo's ``migrations/`` (editable install) or the copy packed into the wheel."""
    packed = Path(__file__).resolve().parents[2] / "migrations"
    if packed.is_dir():
        return packed
    return Path(__file__).resolve().parents[4] / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database to the newest schema; a no-op when it is already there."""
    command.upgrade(alembic_config(url), "head")
