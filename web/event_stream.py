"""An import's progress as Server-Sent Events: one `progress` event per change, ending with the final status.

The view (web/api/imports.py) checks the caller, takes the stream's place (shared.imports.stream_leases)
and reads the first status; a `Watch` then carries what following the import needs, free of the
request. Under the ASGI front (web/asgi.py) the event loop follows it, one coroutine per watcher and
one Redis subscription per process; under a plain WSGI server (the tests' live server, `flask run`)
a thread follows it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from redis import Redis
from redis.exceptions import RedisError

from shared.imports import progress, stream_leases
from shared.imports.stream_leases import Lease
from shared.metrics import EVENT_STREAMS

MAX_SECONDS = 300  # the browser's EventSource reconnects by itself
HEARTBEAT_SECONDS = 15
POLL_SECONDS = 1  # without a live channel (Redis down), how often the database is asked instead
KEEP_ALIVE = ": keep-alive\n\n"
HANDOFF = "dialer.event_streams"  # the ASGI scope's key for the watches the view hands to the loop

Status = dict[str, Any]


def event(status: Status) -> str:
    return f"event: progress\ndata: {json.dumps(status)}\n\n"


@dataclass
class Watch:
    """One open stream on one import, as the view left it."""

    job_id: str
    tenant_id: int
    first: Status
    final: Callable[[], Status]  # from the database: a settled status is read where it is kept
    client: Redis
    lease: Lease

    def __post_init__(self) -> None:
        EVENT_STREAMS.inc()  # from the place taken to the place given back: exactly once each

    @property
    def channel(self) -> str:
        return progress.channel(self.job_id)

    def current(self) -> Status:
        """From Redis where it holds a trustworthy status, else the database."""
        live = progress.read(self.client, self.job_id, self.tenant_id)
        return live if live is not None else self.final()

    def release(self) -> None:
        release_all(self.client, [self])

    def next_status(self, data: Status) -> Status:
        """A published status, or the stored final one once it settles."""
        return self.final() if progress.settled(data) else data


def release_all(client: Redis, watches: list[Watch]) -> None:
    """Give these streams' places back, in one round trip."""
    with contextlib.suppress(RedisError):  # a lapsed lease frees the place anyway
        stream_leases.release(client, [watch.lease for watch in watches])
    EVENT_STREAMS.dec(len(watches))


def follow_in_thread(watch: Watch) -> Iterator[str]:
    """The stream after its first event, in the request's thread (plain WSGI servers)."""
    pubsub = watch.client.pubsub(ignore_subscribe_messages=True)
    renewed = time.monotonic()
    try:
        try:
            pubsub.subscribe(watch.channel)
        except RedisError:  # no live channel: read the database once a second instead
            yield from _poll(watch)
            return
        last = watch.current()  # anything published before we subscribed
        if last != watch.first:
            yield event(last)
        deadline = time.monotonic() + MAX_SECONDS
        while not progress.settled(last) and time.monotonic() < deadline:
            if time.monotonic() - renewed > stream_leases.RENEW_SECONDS:
                stream_leases.renew(watch.client, [watch.lease])
                renewed = time.monotonic()
            message = pubsub.get_message(timeout=HEARTBEAT_SECONDS)
            if message is None:
                yield KEEP_ALIVE
                continue
            last = watch.next_status(json.loads(message["data"]))
            yield event(last)
    finally:
        pubsub.close()
        watch.release()


def _poll(watch: Watch) -> Iterator[str]:
    last = watch.first
    deadline = time.monotonic() + MAX_SECONDS
    while not progress.settled(last) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        current = watch.final()
        if current != last:
            last = current
            yield event(current)


class Subscriptions(Protocol):
    """What a process's event loop needs of the Redis channels (web/stream_hub.py has it)."""

    async def listen(self, channel: str) -> asyncio.Queue[Any]: ...

    async def unlisten(self, channel: str, queue: asyncio.Queue[Any]) -> None: ...

    async def final_status(self, watch: Watch) -> Status: ...

    async def current_status(self, watch: Watch) -> Status: ...


BROKEN = object()  # put in every queue when the subscription broke: messages may have been lost
GONE = object()  # put in the stream's own queue when its client has gone


@dataclass(frozen=True)
class Published:
    """One published status, decoded and rendered once per process for all the watchers it reaches."""

    data: Status
    text: str

    @classmethod
    def of(cls, raw: bytes | str) -> Published:
        data = json.loads(raw)
        return cls(data, event(data))


async def follow_on_loop(
    watch: Watch, hub: Subscriptions, send: Callable[[str], Awaitable[None]], gone: asyncio.Event
) -> None:
    """The stream after its first event, as a coroutine; ends when the import settles or the client goes."""
    try:
        queue = await hub.listen(watch.channel)
    except (RedisError, OSError):
        await _poll_on_loop(watch, send, gone)
        return
    # One waiter for the client's leaving for the stream's whole life, not one per message: with
    # thousands of streams, each message and heartbeat costs a queue read and a send, nothing more.
    leave = asyncio.ensure_future(gone.wait())
    leave.add_done_callback(lambda _: queue.put_nowait(GONE) if not queue.full() else None)
    try:
        last = await hub.current_status(watch)  # anything published before we subscribed
        if last != watch.first:
            await send(event(last))
        deadline = time.monotonic() + MAX_SECONDS
        while not progress.settled(last) and time.monotonic() < deadline and not gone.is_set():
            message = await _next(queue, HEARTBEAT_SECONDS)
            if message is GONE or gone.is_set():
                return
            if message is None:
                await send(KEEP_ALIVE)
                continue
            if message is BROKEN:
                data, text = await hub.current_status(watch), None
            else:
                data, text = message.data, message.text
            if progress.settled(data):
                data, text = await hub.final_status(watch), None
            if data != last:
                last = data
                await send(text or event(data))
    finally:
        leave.cancel()
        await hub.unlisten(watch.channel, queue)


async def _next(queue: asyncio.Queue[Any], timeout: float) -> Any:
    """The queue's next message, or None after `timeout` (a full queue still holds the latest)."""
    try:
        async with asyncio.timeout(timeout):
            return await queue.get()
    except TimeoutError:
        return None


async def _poll_on_loop(watch: Watch, send: Callable[[str], Awaitable[None]], gone: asyncio.Event) -> None:
    last = watch.first
    deadline = time.monotonic() + MAX_SECONDS
    while not progress.settled(last) and time.monotonic() < deadline and not gone.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gone.wait(), POLL_SECONDS)
        current = await asyncio.to_thread(watch.final)
        if current != last:
            last = current
            await send(event(current))
