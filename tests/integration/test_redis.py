"""redis-py's asyncio client against the Redis server scripts/services.sh starts."""

import asyncio
import os
import uuid

import pytest
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


@pytest.fixture
def key():
    """A key-name factory unique to this test run (both loop kinds and
    several Python versions share one server)."""
    prefix = f"ferroloop-test:{uuid.uuid4().hex[:12]}"
    return lambda name: f"{prefix}:{name}"


def connected(redis_url, **kwargs):
    return aioredis.Redis.from_url(redis_url, **kwargs)


def test_set_get_and_large_value(run, redis_url, key):
    blob = os.urandom(1024 * 1024)

    async def main():
        r = connected(redis_url)
        try:
            assert await r.set(key("s"), "value ✓")
            text = await r.get(key("s"))
            await r.set(key("blob"), blob)
            got_blob = await r.get(key("blob"))
            missing = await r.get(key("missing"))
            deleted = await r.delete(key("s"), key("blob"))
        finally:
            await r.aclose()
        return text, got_blob, missing, deleted

    text, got_blob, missing, deleted = run(main())
    assert text == "value ✓".encode()
    assert got_blob == blob
    assert missing is None
    assert deleted == 2


def test_pipeline(run, redis_url, key):
    async def main():
        r = connected(redis_url, decode_responses=True)
        try:
            async with r.pipeline(transaction=True) as pipe:
                pipe.set(key("a"), "1").incrby(key("a"), 41).get(key("a"))
                pipe.rpush(key("list"), *[str(i) for i in range(100)]).lrange(key("list"), 0, -1)
                results = await pipe.execute()
            await r.delete(key("a"), key("list"))
        finally:
            await r.aclose()
        return results

    assert run(main()) == [True, 42, "42", 100, [str(i) for i in range(100)]]


def test_pubsub(run, redis_url, key):
    channel = key("chan")

    async def main():
        subscriber = connected(redis_url, decode_responses=True)
        publisher = connected(redis_url, decode_responses=True)
        try:
            async with subscriber.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                # listen() first confirms the subscription, then delivers.
                confirmation = await anext(pubsub.listen())
                receivers = [await publisher.publish(channel, f"m{i}") for i in range(10)]
                messages = []
                async for message in pubsub.listen():
                    messages.append((message["type"], message["channel"], message["data"]))
                    if len(messages) == 10:
                        break
                await pubsub.unsubscribe(channel)
        finally:
            await publisher.aclose()
            await subscriber.aclose()
        return confirmation["type"], receivers, messages

    confirmation, receivers, messages = run(main())
    assert confirmation == "subscribe"
    assert receivers == [1] * 10  # each publish reached exactly our subscriber
    assert messages == [("message", channel, f"m{i}") for i in range(10)]


def test_blpop(run, redis_url, key):
    async def main():
        r = connected(redis_url, decode_responses=True)
        pusher = connected(redis_url, decode_responses=True)
        try:
            # Nothing to pop: the server answers nil when its timeout ends.
            timed_out = await r.blpop([key("empty")], timeout=0.2)
            # A pop that waits for a push from another connection.
            waiting = asyncio.ensure_future(r.blpop([key("q")], timeout=30))
            await asyncio.sleep(0)
            await pusher.rpush(key("q"), "job")
            popped = await waiting
        finally:
            await pusher.aclose()
            await r.aclose()
        return timed_out, popped

    timed_out, popped = run(main())
    assert timed_out is None
    assert tuple(popped) == (key("q"), "job")


def test_many_concurrent_commands(run, redis_url, key):
    async def main():
        # A blocking pool makes the 500 commands queue for 10 connections.
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=10, decode_responses=True
        )
        r = aioredis.Redis.from_pool(pool)  # closing r closes the pool
        try:
            await asyncio.gather(*(r.incr(key("counter")) for _ in range(500)))
            await asyncio.gather(*(r.set(key(f"k{i}"), f"v{i}") for i in range(200)))
            values = await asyncio.gather(*(r.get(key(f"k{i}")) for i in range(200)))
            counter = await r.get(key("counter"))
            await r.delete(key("counter"), *(key(f"k{i}") for i in range(200)))
        finally:
            await r.aclose()
        return counter, values

    counter, values = run(main())
    assert counter == "500"
    assert values == [f"v{i}" for i in range(200)]


def test_large_pipeline(run, redis_url, key):
    """Thousands of commands written at once and their replies read back:
    far more than one socket buffer in each direction."""
    values = [os.urandom(512) for _ in range(3000)]

    async def main():
        r = connected(redis_url)
        try:
            async with r.pipeline(transaction=False) as pipe:
                for i, value in enumerate(values):
                    pipe.set(key(f"p{i}"), value)
                set_results = await pipe.execute()
            got = await r.mget([key(f"p{i}") for i in range(len(values))])
            await r.delete(*(key(f"p{i}") for i in range(len(values))))
        finally:
            await r.aclose()
        return set_results, got

    set_results, got = run(main())
    assert set_results == [True] * len(values)
    assert got == values


def test_server_closes_connection(run, redis_url, key):
    """CLIENT KILL closes our connection from the server side: the next
    command on it fails with a connection error (no retries configured, so
    none hides it), and the one after that runs on a new connection."""

    async def main():
        r = connected(
            redis_url,
            decode_responses=True,
            single_connection_client=True,
            retry=Retry(NoBackoff(), 0),
        )
        admin = connected(redis_url, decode_responses=True)
        try:
            first_id = await r.client_id()
            assert await admin.client_kill_filter(_id=first_id) == 1
            with pytest.raises(redis.exceptions.ConnectionError):
                await r.set(key("lost"), "never")
            await r.set(key("after"), "ok")
            value = await r.get(key("after"))
            second_id = await r.client_id()
            await r.delete(key("after"))
            lost = await r.exists(key("lost"))
        finally:
            await admin.aclose()
            await r.aclose()
        return value, lost, first_id != second_id

    assert run(main()) == ("ok", 0, True)
