"""Query fingerprints and the read-only check: pure functions of the statement text."""

from __future__ import annotations

import re

import pytest

from pacer.domain.fingerprints import is_read_only, query_id, read_only_violation, statement_kind


@pytest.mark.parametrize(
    "variant",
    [
        "select *  from t where a=2 -- hi",
        "SELECT * FROM t WHERE a = -5 /* a comment */",
        "select *\n  from T\n where A = 1;",
        "SELECT * FROM t WHERE a = :a",
        "SELECT * FROM t WHERE a = %(a)s",
        "SELECT * FROM t WHERE a = ?",
        "SELECT * FROM t WHERE a = $1",
    ],
)
def test_literals_binds_comments_and_layout_do_not_change_the_id(variant: str) -> None:
    """The same query with other literals, binds, comments, case or spacing has the same id."""
    assert query_id(variant) == query_id("SELECT * FROM t WHERE a = 1")


@pytest.mark.parametrize(
    "other",
    [
        "SELECT * FROM u WHERE a = 1",
        "SELECT * FROM t WHERE b = 1",
        "SELECT a FROM t WHERE a = 1",
        "SELECT * FROM t WHERE a > 1",
        "SELECT * FROM t WHERE a = 1 ORDER BY 1",
    ],
)
def test_other_tables_columns_or_operators_change_the_id(other: str) -> None:
    """Queries that differ in more than literals have different ids."""
    assert query_id(other) != query_id("SELECT * FROM t WHERE a = 1")


def test_string_dates_and_booleans_are_literals_too() -> None:
    """Strings, typed literals and booleans are replaced like numbers."""
    first = "SELECT * FROM t WHERE d = DATE '2024-01-01' AND s = 'x' AND f = TRUE"
    second = "SELECT * FROM t WHERE d = DATE '2025-06-30' AND s = 'yy' AND f = FALSE"
    assert query_id(first) == query_id(second)


def test_in_lists_of_any_length_collapse() -> None:
    """``IN (1, 2, 3)`` and ``IN (4)`` are the same query, as is ``IN (:ids)``."""
    ids = {
        query_id(f"SELECT * FROM t WHERE a IN ({values})") for values in ("1, 2, 3", "4", ":ids")
    }
    assert len(ids) == 1


def test_in_subquery_is_not_collapsed() -> None:
    """``IN (SELECT ...)`` is structure, not a list of literals."""
    listed = query_id("SELECT * FROM t WHERE a IN (1)")
    assert query_id("SELECT * FROM t WHERE a IN (SELECT b FROM u)") != listed


def test_null_is_kept() -> None:
    """``IS NULL`` is not a literal value: it differs from comparing to a number."""
    assert query_id("SELECT * FROM t WHERE a IS NULL") != query_id("SELECT * FROM t WHERE a = 1")


def test_id_is_16_hex_digits() -> None:
    """Ids are 16 lowercase hex digits, short enough for URLs and labels."""
    assert re.fullmatch(r"[0-9a-f]{16}", query_id("SELECT 1"))


def test_unparseable_statements_still_get_a_stable_id() -> None:
    """Text sqlglot cannot read falls back to regex normalization, never raising."""
    first = query_id("FROBNICATE the_table WITH 12 ((( 'x'")
    assert first == query_id("frobnicate   the_table with 99 ((( 'other' -- note")
    assert first != query_id("FROBNICATE other_table WITH 12 ((( 'x'")


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1",
        "select a, count(*) from t where d < :as_of group by a",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "SELECT 1 UNION ALL SELECT 2",
        "VALUES (1), (2)",
        "EXPLAIN SELECT * FROM t",
        "EXPLAIN QUERY PLAN SELECT * FROM t",
        "SHOW search_path",
        "PRAGMA table_info(t)",
        "SELECT 1;",
    ],
)
def test_reads_are_read_only(statement: str) -> None:
    """Single queries, CTEs, set operations, VALUES, EXPLAIN, SHOW and schema pragmas read."""
    assert is_read_only(statement)
    assert read_only_violation(statement) is None


@pytest.mark.parametrize(
    ("statement", "found"),
    [
        ("DELETE FROM t", "DELETE"),
        ("insert into t values (1)", "INSERT"),
        ("UPDATE t SET a = 1", "UPDATE"),
        ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE"),
        ("CREATE TABLE x (a INT)", "CREATE"),
        ("DROP TABLE t", "DROP"),
        ("ALTER TABLE t ADD b INT", "ALTER"),
        ("TRUNCATE t", "TRUNCATE"),
        ("GRANT SELECT ON t TO bob", "GRANT"),
        ("COPY t TO STDOUT", "COPY"),
        ("CALL refresh()", "CALL"),
        ("WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "DELETE"),
        ("SELECT * INTO t2 FROM t", "SELECT ... INTO"),
        ("SELECT * FROM t FOR UPDATE", "SELECT ... FOR UPDATE/SHARE"),
        ("SELECT 1; DELETE FROM t", "2 statements"),
        ("SELECT 1; SELECT 2", "2 statements"),
        ("EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN ANALYZE"),
        ("EXPLAIN (ANALYZE, BUFFERS) SELECT 1", "EXPLAIN ANALYZE"),
        ("SELECT nextval('seq')", "a call to nextval()"),
        ("PRAGMA query_only = OFF", "PRAGMA query_only = OFF"),
        ("SET statement_timeout = 0", "SET"),
        ("this is not SQL (((", "a statement that could not be parsed"),
    ],
)
def test_anything_that_may_write_is_not_read_only(statement: str, found: str) -> None:
    """Writes anywhere in the tree, locks, several statements and unparseable text all fail,
    and the violation names what was found."""
    assert not is_read_only(statement)
    assert read_only_violation(statement) == found


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("select 1", "SELECT"),
        ("(SELECT 1) UNION (SELECT 2)", "SELECT"),
        ("delete from t", "DELETE"),
        ("TRUNCATE t", "TRUNCATE"),
        ("EXPLAIN SELECT 1", "EXPLAIN"),
        ("SELECT 1; SELECT 2", "MULTIPLE"),
        ("this is not SQL (((", "UNKNOWN"),
    ],
)
def test_statement_kind_is_the_leading_keyword(statement: str, kind: str) -> None:
    """The kind names the statement as a person would, for messages."""
    assert statement_kind(statement) == kind


def test_statements_sqlglot_keeps_as_text_are_still_told_apart() -> None:
    """EXPLAIN and CALL, which sqlglot leaves unparsed, differ by what follows them."""
    assert query_id("CALL refresh(1)") == query_id("call refresh(2)")
    assert query_id("CALL refresh(1)") != query_id("CALL rebuild(1)")
    assert query_id("EXPLAIN SELECT * FROM t") != query_id("EXPLAIN SELECT * FROM u")
