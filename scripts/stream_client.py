"""Many Server-Sent Event streams from one process (asyncio sockets), for the tests and `make bench`.

A browser tab's EventSource is one connection that reads events as they come; here each is a
coroutine, so thousands fit in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Stream:
    """One open stream: its HTTP status, headers and the `progress` events read so far."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    body: bytes = b""  # an answer that is not a stream (a 429's JSON)
    ended: bool = False
    first: asyncio.Event = field(default_factory=asyncio.Event)  # the head and first event are in
    done: asyncio.Event = field(default_factory=asyncio.Event)  # the server ended the stream
    _writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def open_stream(port: int, path: str, token: str, host: str = "127.0.0.1") -> Stream:
    """Open a stream and follow it in the background; returns once the answer's head has arrived."""
    stream = Stream()
    reader, writer = await asyncio.open_connection(host, port)
    stream._writer = writer
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    stream.status = int(lines[0].split()[1])
    stream.headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    if "content-length" in stream.headers:  # a whole answer: a refusal, or a settled import's one event
        stream.body = await reader.readexactly(int(stream.headers["content-length"]))
        if stream.status == 200:
            stream.events = _events(stream.body)[0]
        stream.ended = True
        stream.first.set()
        stream.done.set()
        writer.close()
        return stream
    asyncio.get_running_loop().create_task(_follow(stream, reader))
    return stream


def _events(buffer: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """The whole events in `buffer` (their data as JSON), and what is left of it."""
    events = []
    while b"\n\n" in buffer:
        block, buffer = buffer.split(b"\n\n", 1)
        data = [line[6:] for line in block.decode().split("\n") if line.startswith("data: ")]
        if data:
            events.append(json.loads("\n".join(data)))
    return events, buffer


async def _follow(stream: Stream, reader: asyncio.StreamReader) -> None:
    """Read chunked SSE until the server ends the stream (or the connection drops)."""
    buffer = b""
    try:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                break
            events, buffer = _events(buffer + (await reader.readexactly(size + 2))[:-2])
            stream.events += events
            if stream.events:
                stream.first.set()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        stream.ended = True
        stream.first.set()
        stream.done.set()
        if stream._writer is not None:
            with contextlib.suppress(Exception):
                stream._writer.close()


async def open_many(port: int, path: str, tokens: list[str], timeout: float = 30) -> list[Stream]:
    """One stream per token (repeat a token to open several for one user); each with its first event."""
    streams = await asyncio.gather(*(open_stream(port, path, token) for token in tokens))
    await asyncio.wait_for(asyncio.gather(*(s.first.wait() for s in streams)), timeout)
    return list(streams)


async def until_ended(streams: list[Stream], timeout: float = 60) -> None:
    """Wait until the server has ended every stream."""
    await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in streams)), timeout)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: the caller's thread may run a loop already (Playwright's does)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
