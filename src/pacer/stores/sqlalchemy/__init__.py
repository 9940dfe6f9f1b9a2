"""The SQLAlchemy store: SQLite and PostgreSQL behind one ``RunStore``."""

from pacer.stores.sqlalchemy.store import SqlStore

__all__ = ["SqlStore"]
