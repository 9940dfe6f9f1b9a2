"""Server-Sent Events: turning a stream of text lines into messages.

Only complete messages (ended by a blank line) come out, so a connection that dies half-way
through one yields nothing of it; the caller resumes from its committed position anyway.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One dispatched event: its ``event`` type, ``data`` and ``id`` (if sent)."""

    event: str
    data: str
    id: str | None = None


@dataclass(frozen=True)
class Comment:
    """A comment line such as ``: keepalive``: proof that the connection is alive."""

    text: str


async def messages(lines: AsyncIterable[str]) -> AsyncIterator[Message | Comment]:
    """Parse lines (without their line endings) into messages and comments."""
    event, data, last_id = "", list[str](), None
    async for line in lines:
        if not line:
            if data:
                yield Message(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            yield Comment(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
