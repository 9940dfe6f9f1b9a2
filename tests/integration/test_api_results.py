"""The results receiver: ``POST /result`` and ``GET /result`` kept exactly, on both stores."""

from __future__ import annotations

import json

from test_api_jobs import PROBLEM, api_client

from pacer.bootstrap import Container, running
from support import fast_settings

JSON = {"Content-Type": "application/json"}


async def test_any_json_is_stored_and_returned_oldest_first(container: Container) -> None:
    """Objects, lists, numbers, strings and null are each stored and answered 201; GET returns
    the bare bodies in arrival order."""
    bodies = [{"year": 2022, "week": 50, "average_weight": 71.5}, [1, 2], 3.5, "text", None]
    async with api_client(container, scope=None) as client:
        answers = [
            await client.post("/result", content=json.dumps(body), headers=JSON) for body in bodies
        ]
        listed = await client.get("/result")
    assert [201] * len(bodies) == [a.status_code for a in answers]
    assert bodies == listed.json()


async def test_a_retried_delivery_is_stored_once(container: Container) -> None:
    """The same Idempotency-Key twice stores one result and answers 201 with the same id."""
    key = {"Idempotency-Key": "run-1:0"}
    async with api_client(container, scope=None) as client:
        first = await client.post("/result", json={"count": 3}, headers=key)
        again = await client.post("/result", json={"count": 3}, headers=key)
        listed = await client.get("/result")
    assert (201, 201) == (first.status_code, again.status_code)
    assert first.json() == again.json()
    assert [{"count": 3}] == listed.json()


async def test_a_body_that_is_not_json_is_a_422_problem(container: Container) -> None:
    """Not JSON, or no body at all: 422 naming the body; nothing is stored."""
    async with api_client(container, scope=None) as client:
        broken = await client.post("/result", content=b"{not json")
        empty = await client.post("/result")
        listed = await client.get("/result")
    for answer in (broken, empty):
        assert 422 == answer.status_code
        assert answer.headers["content-type"].startswith(PROBLEM)
        assert "body" == answer.json()["errors"][0]["field"]
    assert [] == listed.json()


async def test_results_survive_a_restart_and_page_under_api_v1(database_url: str) -> None:
    """Results are in the store: a new server sees them; /api/v1/results pages with a cursor."""
    settings = fast_settings(database_url)
    async with running(settings) as container, api_client(container, scope=None) as client:
        for n in range(5):
            await client.post("/result", json={"n": n})
    async with running(settings) as container, api_client(container) as client:
        assert [{"n": n} for n in range(5)] == (await client.get("/result")).json()
        first = (await client.get("/api/v1/results", params={"limit": 3})).json()
        rest = (
            await client.get("/api/v1/results", params={"limit": 3, "cursor": first["next_cursor"]})
        ).json()
    assert [0, 1, 2, 3, 4] == [item["body"]["n"] for item in first["items"] + rest["items"]]
    assert rest["next_cursor"] is None
