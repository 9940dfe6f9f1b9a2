"""Query fingerprints and the read-only check, from the statement text alone.

A fingerprint groups runs of "the same query" whatever its literals, the way PostgreSQL's
``queryid`` groups ``pg_stat_statements`` rows: history and cost estimates are kept per
fingerprint, so ``WHERE day = '2024-01-01'`` and ``WHERE day = '2024-01-02'`` must share one.

Both functions parse with sqlglot in the PostgreSQL dialect first (it reads ``:name``,
``%(name)s``, ``?`` and ``$1`` binds and ``::`` casts), then SQLite. Neither ever raises: a
fingerprint falls back to a regex normalization, and the read-only check says "no".
"""

from __future__ import annotations

import hashlib
import re

import sqlglot
from sqlglot import exp

__all__ = ["is_read_only", "query_id", "read_only_violation", "statement_kind"]

_DIALECTS = ("postgres", "sqlite")

#: Nodes that write, lock or run arbitrary code wherever they appear in the tree (a CTE too).
_WRITES: tuple[type[exp.Expression], ...] = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Grant,
    exp.Revoke,
    exp.Copy,
    exp.Command,
    exp.Set,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
)
_READ_ROOTS: tuple[type[exp.Expression], ...] = (
    exp.Select,
    exp.SetOperation,
    exp.Values,
    exp.Subquery,
)
#: Functions with side effects that a read-only transaction does not stop. Not exhaustive: the
#: database's own read-only mode is the real guard, this only refuses the obvious early.
_SIDE_EFFECT_FUNCTIONS = frozenset(
    [
        "nextval",
        "setval",
        "set_config",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_switch_wal",
        "pg_create_restore_point",
        "lo_import",
        "lo_export",
        "lo_unlink",
        "dblink_exec",
        "load_extension",
    ]
)
#: SQLite pragmas that only describe the schema; any other pragma may change a setting.
_READ_PRAGMAS = frozenset(
    [
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "foreign_key_check",
        "integrity_check",
        "quick_check",
        "database_list",
        "compile_options",
        "collation_list",
        "function_list",
        "module_list",
        "pragma_list",
        "page_count",
        "freelist_count",
    ]
)


def query_id(statement: str) -> str:
    """16 hex digits identifying the statement with its literals and binds taken out."""
    try:
        normalized = _normalize_parsed(statement)
    except Exception:  # sqlglot raises many error types, and RecursionError on deep nesting
        normalized = None
    if normalized is None:
        normalized = _normalize_regex(statement)
    return hashlib.sha256(normalized.encode()).hexdigest()[:16]


def work_id(kind: str, target: str) -> str:
    """The query id of work that is not SQL (an http POST, a python function): 16 hex digits
    of its kind and target, so its executions group together like a statement's do."""
    return hashlib.sha256(f"{kind}\x1f{target}".encode()).hexdigest()[:16]


def statement_kind(statement: str) -> str:
    """The leading keyword (``SELECT``, ``DELETE``, ...), ``MULTIPLE`` or ``UNKNOWN``."""
    trees = _parse(statement)
    if not trees:
        return "UNKNOWN"
    if len(trees) > 1:
        return "MULTIPLE"
    return _kind(trees[0])


def is_read_only(statement: str) -> bool:
    """True only for one statement that surely reads: anything doubtful counts as a write."""
    return read_only_violation(statement) is None


def read_only_violation(statement: str) -> str | None:
    """Why the statement is not read-only (``DELETE``, ``SELECT ... FOR UPDATE``), or None."""
    trees = _parse(statement)
    if not trees:
        return "a statement that could not be parsed"
    if len(trees) > 1:
        return f"{len(trees)} statements"
    return _tree_violation(trees[0])


def _parse(statement: str) -> list[exp.Expression]:
    for dialect in _DIALECTS:
        try:
            trees = sqlglot.parse(statement, read=dialect)
        except Exception:  # any parse failure: try the next dialect
            continue
        return [tree for tree in trees if isinstance(tree, exp.Expression)]
    return []


def _kind(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    if isinstance(tree, exp.SetOperation | exp.Subquery):
        return "SELECT"
    if isinstance(tree, exp.TruncateTable):
        return "TRUNCATE"
    return type(tree).__name__.upper()


def _tree_violation(tree: exp.Expression) -> str | None:
    if isinstance(tree, exp.Command):
        return _command_violation(tree)
    if isinstance(tree, exp.Pragma):
        return _pragma_violation(tree)
    if not isinstance(tree, _READ_ROOTS):
        return _kind(tree)
    for node in tree.walk():
        if isinstance(node, _WRITES):
            return _kind(node)
        if isinstance(node, exp.Into):
            return "SELECT ... INTO"
        if isinstance(node, exp.Lock):
            return "SELECT ... FOR UPDATE/SHARE"
        if isinstance(node, exp.Func) and _function_name(node) in _SIDE_EFFECT_FUNCTIONS:
            return f"a call to {_function_name(node)}()"
    return None


def _function_name(node: exp.Func) -> str:
    return str(node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _command_violation(tree: exp.Command) -> str | None:
    """sqlglot leaves EXPLAIN and SHOW unparsed: check EXPLAIN's own statement by its text."""
    keyword = str(tree.this).upper()
    if keyword == "SHOW":
        return None
    if keyword != "EXPLAIN":
        return keyword
    rest = tree.expression.name if tree.expression else ""
    if re.search(r"\banaly[sz]e\b", rest, re.IGNORECASE):
        return "EXPLAIN ANALYZE"
    inner = re.sub(r"^\s*(\([^)]*\)|verbose\b|query\s+plan\b|\s)*", "", rest, flags=re.IGNORECASE)
    return read_only_violation(inner)


def _pragma_violation(tree: exp.Pragma) -> str | None:
    target = tree.this
    if isinstance(target, exp.Dot):  # schema-qualified: PRAGMA main.table_info(t)
        target = target.expression
    if isinstance(target, exp.Anonymous | exp.Column) and target.name.lower() in _READ_PRAGMAS:
        return None
    return tree.sql(dialect="sqlite")


# -- fingerprints -------------------------------------------------------------------------------


def _normalize_parsed(statement: str) -> str | None:
    trees = _parse(statement)
    if not trees:
        return None
    return "; ".join(_normalize_tree(tree) for tree in trees)


def _normalize_tree(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Command):
        # sqlglot keeps the rest of an EXPLAIN or CALL as one string: normalize that text,
        # or every CALL would share one id.
        rest = tree.expression.name if tree.expression else ""
        return f"{str(tree.this).upper()} {_normalize_regex(rest)}"
    generalized = tree.transform(_to_placeholder)
    for in_list in generalized.find_all(exp.In):
        values = in_list.expressions
        if values and all(_is_constant(value) for value in values):
            in_list.set("expressions", [exp.Placeholder()])
    return generalized.sql(dialect="postgres", comments=False, normalize=True)


def _to_placeholder(node: exp.Expression) -> exp.Expression:
    """Literals and binds become ``?``, except in ORDER BY / GROUP BY: there ``2`` names a
    column by position, so ``ORDER BY 1`` and ``ORDER BY 2`` are different queries."""
    if isinstance(node.parent, exp.Ordered | exp.Group):
        return node
    if isinstance(node, exp.Literal | exp.Boolean | exp.Parameter | exp.Placeholder):
        return exp.Placeholder()
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal | exp.Placeholder):
        return exp.Placeholder()
    return node


def _is_constant(node: exp.Expression) -> bool:
    if isinstance(node, exp.Placeholder | exp.Null):
        return True
    if isinstance(node, exp.Cast | exp.Paren):
        return _is_constant(node.this)
    if isinstance(node, exp.Tuple):
        return all(_is_constant(child) for child in node.expressions)
    return False


_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_LITERALS = re.compile(
    r"'(?:[^']|'')*'"  # strings
    r"|%\(\w+\)s|(?<![:\w]):\w+|\$\d+|\?"  # binds
    r"|\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b|\btrue\b|\bfalse\b",  # numbers, booleans
    re.IGNORECASE,
)
_IN_LIST = re.compile(r"\bin\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.IGNORECASE)


def _normalize_regex(statement: str) -> str:
    """For statements sqlglot cannot read: cruder, but still stable across literal values."""
    text = _LITERALS.sub("?", _COMMENTS.sub(" ", statement))
    text = _IN_LIST.sub("in (?)", text)
    return " ".join(text.split()).lower().rstrip(";")
