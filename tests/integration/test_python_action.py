"""The python action calling real functions, and the registry that dispatches by kind."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from test_http_action import context

from pacer.actions.python import PythonActionRunner
from pacer.actions.registry import ActionRegistry
from pacer.actions.targets import Targets
from pacer.domain.errors import ActionFailed, InvalidInput
from pacer.ports import RunContext


def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


async def add_later(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def thread_name() -> str:
    return threading.current_thread().name


def wants_context(ctx: RunContext) -> str:
    return ctx.idempotency_key


def takes_everything(**parameters: Any) -> dict[str, Any]:
    return parameters


def fails() -> None:
    raise ValueError("bad row 7")


def fails_for_good() -> None:
    raise ActionFailed("the table is gone", retryable=False)


def returns_a_datetime() -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC)


class Reports:
    @staticmethod
    def daily(region: str) -> str:
        return f"report for {region}"


@pytest.fixture
def functions() -> dict[str, Callable[..., Any]]:
    """The live registry, holding one function under a name no module has."""
    return {"jobs_file:add": add}


@pytest.fixture
async def runner(functions: dict[str, Callable[..., Any]]) -> AsyncIterator[PythonActionRunner]:
    """A python runner over ``functions``."""
    python = PythonActionRunner(functions)
    yield python
    await python.aclose()


def call(function: str) -> dict[str, Any]:
    return {"kind": "python", "function": function}


async def test_registered_function_gets_parameters_as_keywords(runner: PythonActionRunner) -> None:
    """A function from the live registry is called with the run's parameters."""
    assert await runner.execute(call("jobs_file:add"), context(a=2, b=3)) == {"sum": 5}


async def test_async_function_is_awaited(runner: PythonActionRunner) -> None:
    """A coroutine function runs on the loop and its value is the result."""
    assert await runner.execute(call(f"{__name__}:add_later"), context(a=2, b=3)) == 5


async def test_sync_function_runs_in_a_thread(runner: PythonActionRunner) -> None:
    """A sync function runs off the event loop's thread, so it cannot block the worker."""
    assert await runner.execute(call(f"{__name__}:thread_name"), context()) != thread_name()


async def test_function_is_imported_by_dotted_qualname(runner: PythonActionRunner) -> None:
    """``module:Class.method`` resolves by import when the registry lacks it."""
    result = await runner.execute(call(f"{__name__}:Reports.daily"), context(region="north"))
    assert result == "report for north"


async def test_ctx_is_passed_when_declared(runner: PythonActionRunner) -> None:
    """A function with a ``ctx`` parameter gets the run's context."""
    assert await runner.execute(call(f"{__name__}:wants_context"), context("key-9")) == "key-9"


async def test_undeclared_parameters_are_left_out(runner: PythonActionRunner) -> None:
    """Parameters a function does not name are not passed; ``**kwargs`` gets them all."""
    assert await runner.execute(call("jobs_file:add"), context(a=1, b=1, as_of="x")) == {"sum": 2}
    result = await runner.execute(call(f"{__name__}:takes_everything"), context(a=1, as_of="x"))
    assert result == {"a": 1, "as_of": "x"}


async def test_exceptions_become_retryable_failures(runner: PythonActionRunner) -> None:
    """An unexpected exception fails the attempt as retryable, naming its type and message."""
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(call(f"{__name__}:fails"), context())
    assert failure.value.retryable
    assert str(failure.value) == "ValueError: bad row 7"


async def test_action_failed_passes_through(runner: PythonActionRunner) -> None:
    """A function raising ActionFailed decides for itself whether to retry."""
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(call(f"{__name__}:fails_for_good"), context())
    assert not failure.value.retryable
    assert str(failure.value) == "the table is gone"


async def test_result_that_is_not_json_is_kept_as_text(runner: PythonActionRunner) -> None:
    """A return value JSON cannot hold is stored as its ``str``."""
    result = await runner.execute(call(f"{__name__}:returns_a_datetime"), context())
    assert result == "2024-01-01 00:00:00+00:00"


async def test_missing_function_fails_for_good(runner: PythonActionRunner) -> None:
    """A run whose function no longer exists fails without retrying."""
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(call(f"{__name__}:gone"), context())
    assert not failure.value.retryable


async def test_replaced_registered_function_is_called_not_the_cached_one(
    runner: PythonActionRunner, functions: dict[str, Callable[..., Any]]
) -> None:
    """The runner works a function out once, but a jobs file loaded again (a new function
    object under the same name) is noticed: its new signature and body are used."""
    assert await runner.execute(call("jobs_file:add"), context(a=2, b=3)) == {"sum": 5}

    def add(a: int, b: int, c: int = 0) -> dict[str, int]:
        return {"total": a + b + c}

    functions["jobs_file:add"] = add
    assert await runner.execute(call("jobs_file:add"), context(a=2, b=3, c=4)) == {"total": 9}


async def test_a_spec_with_unknown_fields_is_refused_even_after_its_function_ran(
    runner: PythonActionRunner,
) -> None:
    """Only a plain spec takes the shortcut past validation; anything else is checked."""
    await runner.execute(call(f"{__name__}:add_later"), context(a=1, b=1))
    with pytest.raises(ActionFailed) as failure:
        await runner.execute({**call(f"{__name__}:add_later"), "retry": 3}, context(a=1, b=1))
    assert not failure.value.retryable


@pytest.mark.parametrize(
    "function", ["no_such_module_x:f", f"{__name__}:gone", f"{__name__}:Reports.nope"]
)
def test_validate_refuses_unresolvable_functions(runner: PythonActionRunner, function: str) -> None:
    """A function that neither the registry nor an import provides is refused up front."""
    with pytest.raises(InvalidInput) as refused:
        runner.validate(call(function))
    assert refused.value.field == "action.function"


def test_validate_accepts_registered_and_importable_functions(runner: PythonActionRunner) -> None:
    """Registered names and importable ``module:qualname`` both pass validation."""
    runner.validate(call("jobs_file:add"))
    runner.validate(call(f"{__name__}:Reports.daily"))


# -- registry -----------------------------------------------------------------------------------


@pytest.fixture
async def registry(functions: dict[str, Callable[..., Any]]) -> AsyncIterator[ActionRegistry]:
    """The default registry with one sqlite target."""
    actions = ActionRegistry.default(Targets({"local": "sqlite://"}), functions)
    yield actions
    await actions.aclose()


def test_registry_knows_the_three_kinds(registry: ActionRegistry) -> None:
    """``sql``, ``http`` and ``python`` are registered by default."""
    assert [registry.get(kind).kind for kind in ("sql", "http", "python")] == [
        "sql",
        "http",
        "python",
    ]


def test_registry_refuses_unknown_kind(registry: ActionRegistry) -> None:
    """An unknown kind is refused naming action.kind."""
    with pytest.raises(InvalidInput) as refused:
        registry.validate({"kind": "ftp"})
    assert refused.value.field == "action.kind"


def test_registry_names_the_bad_field(registry: ActionRegistry) -> None:
    """A spec that fails its model names the field as ``action.<field>``."""
    with pytest.raises(InvalidInput) as refused:
        registry.validate(
            {"kind": "sql", "target": "local", "statement": "SELECT 1", "max_rows": 0}
        )
    assert refused.value.field == "action.max_rows"


def test_registry_gives_every_action_a_query_id(registry: ActionRegistry) -> None:
    """SQL is fingerprinted by statement; python by function and http by URL, so executions
    of the same work group together whatever its kind."""
    assert registry.query_id({"kind": "sql", "target": "local", "statement": "SELECT 1"})
    add = registry.query_id(call("jobs_file:add"))
    assert add == registry.query_id(call("jobs_file:add")) != registry.query_id(call("x:y"))
    hook = {"kind": "http", "url": "https://example.com/a"}
    assert registry.query_id(hook) not in (None, add)


async def test_registry_executes_by_kind(registry: ActionRegistry) -> None:
    """The runner found by kind executes the spec."""
    spec = {"kind": "sql", "target": "local", "statement": "SELECT :a + 1 AS b"}
    registry.validate(spec)
    result = await registry.get("sql").execute(spec, context(a=1))
    assert result == {"columns": ["b"], "rows": [[2]], "row_count": 1}
