"""Actions: the kinds of work a run executes (``sql``, ``metric``, ``http``, ``python``), one
module each, plus the schema discovery that ``metric`` jobs are checked against.

Only ``pacer.bootstrap`` builds these; services see them through ``pacer.ports.ActionCatalog``.
"""

from pacer.actions.discovery import SchemaCatalog
from pacer.actions.http import HttpActionRunner, HttpPoster
from pacer.actions.metric import MetricActionRunner
from pacer.actions.python import PythonActionRunner
from pacer.actions.registry import ActionRegistry
from pacer.actions.sql import SqlActionRunner
from pacer.actions.targets import Targets

__all__ = [
    "ActionRegistry",
    "HttpActionRunner",
    "HttpPoster",
    "MetricActionRunner",
    "PythonActionRunner",
    "SchemaCatalog",
    "SqlActionRunner",
    "Targets",
]
