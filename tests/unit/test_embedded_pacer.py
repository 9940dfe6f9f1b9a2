"""The pacer embedded in ``pacer up --pace``: how it reaches its own server."""

from __future__ import annotations

from pacer.cli.processes import embedded_client
from pacer.settings import Settings


async def test_embedded_client_reads_the_stream_with_the_servers_keepalive() -> None:
    """A server sending keepalives every 45 s is not taken for dead by its own pacer after
    20 s of a quiet log: the client's read timeout follows the server's interval."""
    settings = Settings(sse_keepalive_s=45.0)
    client = embedded_client(settings, "pacer_secret")
    try:
        assert 45.0 == client.keepalive
    finally:
        await client.aclose()
