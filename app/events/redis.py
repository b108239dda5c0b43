"""``RedisBus``: events across replicas, over Redis pub/sub (the cache's Redis).

``publish`` hands the event to this process's subscribers at once, then publishes it to Redis;
every other replica receives it there and hands it to its own subscribers (a replica skips
its own messages, named by the codec's ``origin``). So a replica's subscribers never wait on
Redis for its own events, and while Redis is down they still get them.

**One channel** for every tenant, not one per tenant: each process holds a single pub/sub
connection subscribed once, at start-up, to one channel, so a new subscriber costs no Redis
round trip and cannot miss events published while its ``SUBSCRIBE`` is in flight, and there
is nothing to re-subscribe tenant by tenant after a reconnect. The price is that a replica
receives the events of tenants it has no subscriber for, each one decoded and dropped
(microseconds). Isolation does not rest on the channel: the event carries its tenant, and
the bus hands it only to that tenant's subscriptions, as ``MemoryBus`` does. Redis pub/sub
channels ignore the database number, so the channel is named after it: two deployments on
one Redis server in different databases do not hear each other.

**Outages** (``app.outages.Outage``, logged once when they start and once when they end,
with the error's type only): a publish that fails, or is bypassed during the cool-down, still
reached this replica's subscribers, and the caller never sees the failure. The listener
reconnects by itself every ``cooldown`` seconds; events published elsewhere while it was
cut off are not replayed (pub/sub keeps nothing). A connection that stays silent is pinged,
so a half-open one is noticed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import msgspec
import redis.asyncio
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.events import codec
from app.events.bus import QUEUE_SIZE, EventBus
from app.events.model import RecordingEvent
from app.outages import COOLDOWN, Outage
from app.settings import CacheSettings

logger = logging.getLogger("app.events")

#: The channel's name, for Redis database ``db``.
CHANNEL = "recording-gateway:{db}:events"
#: Seconds of silence on the pub/sub connection before it is pinged.
PING_INTERVAL = 10.0
#: The longest wait to connect and subscribe, or for a ping's answer.
LISTEN_TIMEOUT = 5.0


class RedisBus(EventBus):
    """Events for every replica sharing one Redis (see the module docstring). ``start`` it
    (it subscribes before returning, or logs the outage and keeps trying), ``aclose`` it."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        channel: str,
        queue_size: int = QUEUE_SIZE,
        timeout: float = 0.1,
        cooldown: float = COOLDOWN,
    ) -> None:
        super().__init__(queue_size)
        self._client = client
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self._timeout = timeout
        self._cooldown = cooldown
        self._outage = Outage(
            logger,
            "event bus: Redis unavailable (%s); events reach this replica's subscribers only "
            "until it is back",
            "event bus: Redis is back; events reach every replica again",
            cooldown=cooldown,
        )
        self._listener: asyncio.Task[None] | None = None
        #: Set whenever the listener is subscribed (tests wait on it).
        self.listening = asyncio.Event()
        self._tried = asyncio.Event()  # the listener's first attempt is over, either way

    @classmethod
    def from_settings(cls, cache: CacheSettings, queue_size: int = QUEUE_SIZE) -> RedisBus:
        client = redis.asyncio.Redis(
            host=cache.host,
            port=cache.port,
            db=cache.db,
            password=str(cache.password) if cache.password else None,
            socket_connect_timeout=max(cache.timeout, 1.0),
            retry=Retry(NoBackoff(), 0),  # the listener's own loop reconnects
        )
        return cls(
            client,
            channel=CHANNEL.format(db=cache.db),
            queue_size=queue_size,
            timeout=cache.timeout,
            cooldown=cache.cooldown,
        )

    async def start(self) -> None:
        """Start listening in a task, and wait (up to ``GATEWAY_CACHE_TIMEOUT``) for its
        first attempt to subscribe: a replica that starts with Redis up serves no request
        before it hears the others. Redis down or frozen delays the start by that much at
        most; the listener keeps trying in the background."""
        self._listener = asyncio.get_running_loop().create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self._tried.wait()

    async def publish(self, event: RecordingEvent) -> None:
        self.deliver(event)
        if not self._outage.available():
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.publish(self.channel, codec.encode(self.origin, event))
        except (redis.RedisError, OSError, TimeoutError) as exc:
            self._outage.failed(exc)
        else:
            self._outage.succeeded()

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await super().aclose()
        await self._client.aclose()

    async def _listen(self) -> None:
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(LISTEN_TIMEOUT):
                    await pubsub.subscribe(self.channel)
                self.listening.set()
                self._tried.set()
                self._outage.succeeded()
                await self._receive(pubsub)
            except (redis.RedisError, OSError, TimeoutError) as exc:
                self.listening.clear()
                self._tried.set()
                self._outage.failed(exc)
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            await asyncio.sleep(self._cooldown)

    async def _receive(self, pubsub: PubSub) -> None:
        """Deliver what the channel brings until the connection fails (an exception). After
        ``PING_INTERVAL`` of silence it is pinged; a second silence with the ping unanswered
        is a dead connection (TimeoutError)."""
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=PING_INTERVAL)
            if message is None:
                if pinged:
                    raise TimeoutError("no answer to a ping")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message.get("type") != "message":
                continue
            try:
                received = codec.decode(message["data"])
            except msgspec.DecodeError as exc:
                logger.warning("event bus: ignoring a message that is not an event (%s)", exc)
                continue
            if received.origin != self.origin:
                self.deliver(received.event)
