"""One Redis subscription per web process, fanned out to every event stream the process serves.

A thousand watchers of one import cost one channel subscription and a thousand small queues, not
a thousand Redis connections. The hub also renews the open streams' leases (stream_leases), in one
pipeline per round for the whole process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from shared.imports import progress, stream_leases
from shared.imports.stream_leases import Lease
from web.event_stream import BROKEN, Published, Watch, release_all

log = logging.getLogger(__name__)
QUEUE_SIZE = 64  # a watcher this far behind only needs the latest status: older ones are dropped
RECONNECT_SECONDS = 1.0
GIVE_BACK_SECONDS = 0.05
FINAL_SECONDS = 5.0  # a final status read serves the watchers that see the import settle meanwhile


class Hub:
    """The process's channel subscriptions and open-stream leases."""

    def __init__(self, redis_url: str, client: Redis) -> None:
        self._redis = AsyncRedis.from_url(redis_url)
        self._client = client  # the app's own (sync) client, for the leases' renewal in a thread
        self._pubsub: PubSub | None = None
        self._queues: dict[str, set[asyncio.Queue[Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self.leases: set[Lease] = set()
        self._finals: dict[str, tuple[asyncio.Future[dict[str, Any]], float]] = {}
        self._ended: list[Watch] = []  # streams whose places wait to be given back
        self._giver: asyncio.Task[None] | None = None

    @property
    def open_streams(self) -> int:
        return sum(len(queues) for queues in self._queues.values())

    async def listen(self, channel: str) -> asyncio.Queue[Any]:
        """A queue that receives every message published on `channel` from now on."""
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
        listeners = self._queues.setdefault(channel, set())
        listeners.add(queue)
        if len(listeners) == 1:
            try:
                await self._subscription().subscribe(channel)
            except (RedisError, OSError):
                self._queues.pop(channel, None)
                raise
        self._start()
        return queue

    async def unlisten(self, channel: str, queue: asyncio.Queue[Any]) -> None:
        listeners = self._queues.get(channel)
        if listeners is None:
            return
        listeners.discard(queue)
        if not listeners:
            del self._queues[channel]
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(channel)

    async def final_status(self, watch: Watch) -> dict[str, Any]:
        """The stored final status of the watched import, read once for all its watchers in this
        process (a thousand watchers of one import ending together cost one database read)."""
        now = time.monotonic()
        found = self._finals.get(watch.job_id)
        if found is None or found[1] < now:
            found = (asyncio.ensure_future(asyncio.to_thread(watch.final)), now + FINAL_SECONDS)
            self._finals[watch.job_id] = found
            for job, (_, until) in list(self._finals.items()):
                if until < now:
                    del self._finals[job]
        try:
            return await asyncio.shield(found[0])
        except Exception:
            self._finals.pop(watch.job_id, None)  # the next watcher reads again
            raise

    async def current_status(self, watch: Watch) -> dict[str, Any]:
        """The watched import's status from Redis on the loop (no thread), else from the database."""
        try:
            found = await self._redis.hmget(progress.hash_key(watch.job_id), *progress.STORED)
        except (RedisError, OSError):
            found = None
        body = None if found is None else progress.trusted_body(found, watch.tenant_id)
        return json.loads(body) if body is not None else await asyncio.to_thread(watch.final)

    def hold(self, lease: Lease) -> None:
        self.leases.add(lease)
        self._start()

    def give_back(self, watch: Watch) -> None:
        """The ended stream's place goes back with the others that end within GIVE_BACK_SECONDS, in
        one round trip and one thread hop (a thousand watchers of one import end together)."""
        self.leases.discard(watch.lease)
        self._ended.append(watch)
        if self._giver is None or self._giver.done():
            self._giver = asyncio.get_running_loop().create_task(self._give_back())

    async def _give_back(self) -> None:
        while self._ended:  # those that ended while the last round trip ran go in the next
            await asyncio.sleep(GIVE_BACK_SECONDS)
            ended, self._ended = self._ended, []
            await asyncio.to_thread(release_all, self._client, ended)

    async def close(self) -> None:
        for task in (self._reader, self._renewer, self._giver):
            if task is not None:
                task.cancel()
        if self._ended:
            await asyncio.to_thread(release_all, self._client, self._ended)
            self._ended = []
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        await self._redis.aclose()

    def _subscription(self) -> PubSub:
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        return self._pubsub

    def _start(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def _read(self) -> None:
        """Hand each message to the queues of its channel; after a break, subscribe again."""
        while True:
            if not self._queues:
                await asyncio.sleep(RECONNECT_SECONDS / 4)  # nothing to read until someone listens
                continue
            pubsub = self._subscription()
            try:
                if not pubsub.subscribed:  # a new connection after a break
                    await pubsub.subscribe(*self._queues)
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("event stream subscription broke (%s); subscribing again", type(exc).__name__)
                await self._broken()
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            listeners = self._queues.get(channel.decode() if isinstance(channel, bytes) else channel, ())
            if not listeners:
                continue
            try:
                published = Published.of(message["data"])  # once here, not once per watcher
            except ValueError:
                log.warning("a message on %s is not a status; dropped", channel)
                continue
            for queue in listeners:
                _offer(queue, published)

    async def _broken(self) -> None:
        """Drop the connection; every watcher rereads its status, since messages may have been lost."""
        old, self._pubsub = self._pubsub, None
        if old is not None:
            with contextlib.suppress(RedisError, OSError):
                await old.aclose()
        for listeners in self._queues.values():
            for queue in listeners:
                _offer(queue, BROKEN)
        await asyncio.sleep(RECONNECT_SECONDS)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(stream_leases.RENEW_SECONDS)
            if self.leases:
                with contextlib.suppress(RedisError, OSError):
                    await asyncio.to_thread(stream_leases.renew, self._client, list(self.leases))


def _offer(queue: asyncio.Queue[Any], item: Any) -> None:
    """Put without waiting: a full queue loses its oldest message (the newest status is what counts)."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
