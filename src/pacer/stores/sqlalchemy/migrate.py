"""Applying the Alembic migrations, at start and from ``pacer db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from pacer.domain.errors import StoreUnavailable
from pacer.stores.sqlalchemy.dialects import masked_url, sync_url


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


def check_url(url: str) -> None:
    """Refuse, before any connection is tried, a URL that does not parse and an SQLite file
    whose folder does not exist (SQLite would only say "unable to open database file", and
    only after the start-up's retries)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise StoreUnavailable(masked_url(url), "not a valid SQLAlchemy URL") from exc
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database and not database.startswith(":"):
        folder = Path(database).parent
        if not folder.is_dir():
            raise StoreUnavailable(masked_url(url), f"the folder {folder} does not exist")


def unusable(url: str, exc: BaseException) -> StoreUnavailable | None:
    """What the user can fix about a store the migration could not open: no driver for the
    URL, a database that cannot be reached or does not exist, a schema revision this code
    does not know (migrated by a newer Pacer). None for anything else, which is a bug and
    keeps its traceback."""
    if isinstance(exc, ArgumentError):
        reason = str(exc)
    elif isinstance(exc, DBAPIError) and type(exc.orig).__name__ == "OperationalError":
        reason = f"cannot be opened: {str(exc.orig).strip()}"
    elif isinstance(exc, CommandError):
        reason = f"{exc} (was it migrated by a newer Pacer?)"
    else:
        return None
    return StoreUnavailable(masked_url(url), reason)
