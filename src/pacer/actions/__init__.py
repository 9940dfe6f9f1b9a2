"""Actions: the kinds of work a run executes (``sql``, ``http``, ``python``), one module each.

Only ``pacer.bootstrap`` builds these; services see them through ``pacer.ports.ActionCatalog``.
"""

from pacer.actions.http import HttpActionRunner, HttpPoster
from pacer.actions.python import PythonActionRunner
from pacer.actions.registry import ActionRegistry
from pacer.actions.sql import SqlActionRunner
from pacer.actions.targets import Targets

__all__ = [
    "ActionRegistry",
    "HttpActionRunner",
    "HttpPoster",
    "PythonActionRunner",
    "SqlActionRunner",
    "Targets",
]
