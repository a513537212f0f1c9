"""The web as an ASGI app: `gunicorn -c python:web.gunicorn_config 'web.asgi:create_asgi()'`.

The Flask app runs as it is, in a pool of WEB_THREADS threads; the event loop in front of it does
what a thread must not wait for:
- it reads a request's whole body before a thread sees the request (at most REQUEST_BODY_SECONDS,
  then 408), so a client that sends a byte a second holds a coroutine, not a thread;
- the thread builds the whole answer (no answer of the app streams but the event stream) and the
  loop sends it, so a client that never reads its answer holds no thread either, and a request
  costs one hand-over to the pool and back;
- it follows an import's event stream after the view has checked the caller and sent the first
  event (web/event_stream.py), so thousands of open progress pages hold no thread.
Slow request headers never reach the app at all: uvicorn parses them on the loop. The WSGI
environ is a2wsgi's (`build_environ`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import build_environ
from flask import Flask

from shared.settings import Settings
from web.event_stream import HANDOFF, Watch, follow_on_loop
from web.stream_hub import Hub

log = logging.getLogger(__name__)
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
SEND_SECONDS = 60  # a client that reads nothing of its answer for this long is let go


def create_asgi(settings: Settings | None = None) -> Front:
    """The application gunicorn's uvicorn workers serve (a factory, like web:create_app)."""
    from web import create_app

    return Front(create_app(settings))


class Front:
    """The event loop in front of the Flask app (see the module's docstring)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        settings: Settings = app.config["SETTINGS"]
        self._body_seconds = settings.request_body_seconds
        self._body_limit = int(app.config["MAX_CONTENT_LENGTH"])
        self._pool = ThreadPoolExecutor(settings.web_threads, thread_name_prefix="flask")
        self._settings = settings
        self._hub: Hub | None = None

    @property
    def hub(self) -> Hub:
        if self._hub is None:  # made on the loop that serves the streams
            self._hub = Hub(self._settings.redis_url, self.app.extensions["redis"])
        return self._hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here
        body = await self._read_body(receive, send)
        if body is None:
            return
        watches: list[Watch] = []
        scope = scope | {HANDOFF: watches}  # the view puts the stream it checked here (environ["asgi.scope"])
        environ = build_environ(scope, io.BytesIO(body))  # type: ignore[arg-type]
        call = contextvars.copy_context().run
        status, headers, content = await asyncio.get_running_loop().run_in_executor(
            self._pool, call, _answer, self.app, environ
        )
        with contextlib.suppress(OSError, TimeoutError):
            await _send_within(send, {"type": "http.response.start", "status": status, "headers": headers})
            await _send_within(
                send, {"type": "http.response.body", "body": content, "more_body": bool(watches)}
            )
        if watches:
            await self._follow(watches[0], receive, send)

    async def _follow(self, watch: Watch, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def wait_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        async def write(text: str) -> None:
            await _send_within(send, {"type": "http.response.body", "body": text.encode(), "more_body": True})

        hub = self.hub
        hub.hold(watch.lease)
        watcher = asyncio.ensure_future(wait_gone())
        try:
            await follow_on_loop(watch, hub, write, gone)
            with contextlib.suppress(OSError, TimeoutError):
                await _send_within(send, {"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, TimeoutError):
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            hub.give_back(watch)

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        """The request's body, or None once answered 408 (too slow) or the client left."""
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._body_seconds
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                await _refuse(send, 408, "request_timeout", self._body_seconds)
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            # Past the limit the app refuses the body (413) from what it has; reading on is waste.
            if size > self._body_limit or not message.get("more_body", False):
                return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._hub is not None:
                    await self._hub.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _answer(app: Flask, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The app's whole answer to one request (in a pool thread): status, headers, body."""
    head: list[Any] = []
    chunks: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        head[:] = [
            int(status.split(" ", 1)[0]),
            [(k.lower().encode("latin1"), v.encode("latin1")) for k, v in headers],
        ]
        return chunks.append

    answer = app(environ, start_response)  # type: ignore[arg-type]
    try:
        chunks.extend(answer)
    finally:
        getattr(answer, "close", lambda: None)()
    return head[0], head[1], b"".join(chunks)


async def _send_within(send: Send, message: Message) -> None:
    """Send, but never wait for a client that stopped reading longer than SEND_SECONDS."""
    async with asyncio.timeout(SEND_SECONDS):  # no task per send, as wait_for would make
        await send(message)


async def _refuse(send: Send, status: int, code: str, seconds: int) -> None:
    body = json.dumps(
        {
            "error": {
                "code": code,
                "message": f"The request's body did not arrive within {seconds} seconds; send it again.",
                "details": None,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
