"""asyncpg against the PostgreSQL server scripts/services.sh starts."""

import asyncio
import datetime
import decimal
import uuid

import asyncpg
import pytest


def unique(prefix):
    # Both loop kinds (and several Python versions) share one database.
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def test_password_authentication(run, postgres):
    async def main():
        conn = await asyncpg.connect(**postgres)
        try:
            who = await conn.fetchrow("SELECT current_user AS user, current_database() AS db")
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(**{**postgres, "password": "wrong"})
        return dict(who)

    assert run(main()) == {"user": "ferroloop", "db": "ferroloop_test"}


def test_executemany_fetch_and_types(run, postgres):
    rows = [
        (
            i,
            f"name {i} ✓",
            bytes([i % 256]) * (i % 50),
            datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
            + datetime.timedelta(minutes=i),
            decimal.Decimal(i) / 7,
            [i, i + 1],
        )
        for i in range(500)
    ]

    async def main():
        conn = await asyncpg.connect(**postgres)
        try:
            await conn.execute(
                "CREATE TEMP TABLE items (id int PRIMARY KEY, name text, blob bytea,"
                " at timestamptz, amount numeric, pair int[])"
            )
            await conn.executemany("INSERT INTO items VALUES ($1, $2, $3, $4, $5, $6)", rows)
            fetched = await conn.fetch("SELECT * FROM items ORDER BY id")
            count = await conn.fetchval("SELECT count(*) FROM items")
            # A result set far larger than one socket read.
            series = await conn.fetch("SELECT g, md5(g::text) FROM generate_series(1, 50000) g")
        finally:
            await conn.close()
        return [tuple(r) for r in fetched], count, series

    fetched, count, series = run(main())
    assert count == len(rows)
    assert fetched == rows
    assert len(series) == 50000
    assert series[-1][0] == 50000


def test_transaction_rollback_and_savepoint(run, postgres):
    class Abort(Exception):
        pass

    async def main():
        conn = await asyncpg.connect(**postgres)
        try:
            await conn.execute("CREATE TEMP TABLE t (v int)")
            with pytest.raises(Abort):
                async with conn.transaction():
                    await conn.execute("INSERT INTO t VALUES (1)")
                    raise Abort
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (2)")
                with pytest.raises(asyncpg.UniqueViolationError):
                    async with conn.transaction():  # a savepoint
                        await conn.execute("INSERT INTO t VALUES (3)")
                        await conn.execute("CREATE UNIQUE INDEX ON t (v)")
                        await conn.execute("INSERT INTO t VALUES (3)")
            return [r["v"] for r in await conn.fetch("SELECT v FROM t ORDER BY v")]
        finally:
            await conn.close()

    assert run(main()) == [2]


def test_prepared_statement_and_cursor(run, postgres):
    async def main():
        conn = await asyncpg.connect(**postgres)
        try:
            stmt = await conn.prepare(
                "SELECT g, g * $1::int AS scaled FROM generate_series(1, $2) g"
            )
            params = [t.name for t in stmt.get_parameters()]
            first = await stmt.fetch(3, 5)
            again = await stmt.fetchrow(10, 1)
            async with conn.transaction():  # cursors live in a transaction
                streamed = [r["scaled"] async for r in stmt.cursor(2, 1000, prefetch=64)]
        finally:
            await conn.close()
        return params, [tuple(r) for r in first], tuple(again), streamed

    params, first, again, streamed = run(main())
    assert params == ["int4", "int4"]
    assert first == [(g, 3 * g) for g in range(1, 6)]
    assert again == (1, 10)
    assert streamed == [2 * g for g in range(1, 1001)]


def test_copy_in_and_out(run, postgres):
    records = [(i, f"row {i}") for i in range(20000)]

    async def main():
        conn = await asyncpg.connect(**postgres)
        try:
            await conn.execute("CREATE TEMP TABLE c (id int, label text)")
            await conn.copy_records_to_table("c", records=records)
            chunks = []

            async def sink(data):
                chunks.append(data)

            await conn.copy_from_query("SELECT id, label FROM c ORDER BY id", output=sink)
        finally:
            await conn.close()
        return b"".join(chunks)

    out = run(main())
    assert out == "".join(f"{i}\trow {i}\n" for i in range(20000)).encode()


def test_listen_notify(run, postgres):
    channel = unique("chan")

    async def main():
        listener = await asyncpg.connect(**postgres)
        notifier = await asyncpg.connect(**postgres)
        received = asyncio.Queue()

        def on_notify(conn, pid, chan, payload):
            received.put_nowait((chan, payload))

        try:
            await listener.add_listener(channel, on_notify)
            for i in range(5):
                await notifier.execute("SELECT pg_notify($1, $2)", channel, f"message {i}")
            got = [await received.get() for _ in range(5)]
            await listener.remove_listener(channel, on_notify)
        finally:
            await notifier.close()
            await listener.close()
        return got

    assert run(main()) == [(channel, f"message {i}") for i in range(5)]


def test_query_cancelled_by_timeout(run, postgres):
    """wait_for cancels the query: asyncpg sends PostgreSQL a cancel request
    on a second connection, and the first one stays usable."""

    async def main():
        conn = await asyncpg.connect(**postgres)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(conn.fetchval("SELECT pg_sleep(30)"), 0.2)
            return await conn.fetchval("SELECT 41 + 1")
        finally:
            await conn.close()

    assert run(main()) == 42


def test_pool_concurrent_queries(run, postgres):
    table = unique("pool")

    async def main():
        async with asyncpg.create_pool(**postgres, min_size=2, max_size=5) as pool:
            await pool.execute(f"CREATE TABLE {table} (worker int, n int)")
            try:
                # Five connections held at once are five server backends.
                held = [await pool.acquire() for _ in range(5)]
                pids = {await c.fetchval("SELECT pg_backend_pid()") for c in held}
                for c in held:
                    await pool.release(c)

                async def work(w):
                    async with pool.acquire() as conn:
                        for n in range(10):
                            await conn.execute(f"INSERT INTO {table} VALUES ($1, $2)", w, n)
                    return await pool.fetchval("SELECT $1::int * 2", w)

                doubled = await asyncio.gather(*(work(w) for w in range(40)))
                counts = await pool.fetch(
                    f"SELECT worker, count(*) AS n FROM {table} GROUP BY worker ORDER BY worker"
                )
            finally:
                await pool.execute(f"DROP TABLE {table}")
        return len(pids), doubled, [tuple(r) for r in counts]

    distinct_backends, doubled, counts = run(main())
    assert distinct_backends == 5
    assert doubled == [2 * w for w in range(40)]
    assert counts == [(w, 10) for w in range(40)]


def test_tls_connection(run, postgres):
    """ssl="require": asyncpg asks the server for TLS and upgrades the open
    connection (loop.start_tls); the server's certificate is self-signed, so
    it is not verified. Everything after that goes through TLS."""

    async def main():
        conn = await asyncpg.connect(**{**postgres, "ssl": "require"})
        try:
            encrypted = await conn.fetchval(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
            rows = await conn.fetch("SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g")
            await conn.execute("CREATE TEMP TABLE t (v bytea)")
            await conn.executemany("INSERT INTO t VALUES ($1)", [(bytes(1000),)] * 200)
            total = await conn.fetchval("SELECT sum(length(v)) FROM t")
        finally:
            await conn.close()
        return encrypted, len(rows), rows[-1][0], total

    assert run(main()) == (True, 20000, 20000, 200 * 1000)


def test_server_terminates_backend(run, postgres):
    """pg_terminate_backend ends a connection from the server side: the
    client notices on its own (its termination listener runs), the
    connection is closed, and querying it fails."""

    async def main():
        victim = await asyncpg.connect(**postgres)
        admin = await asyncpg.connect(**postgres)
        terminated = asyncio.get_running_loop().create_future()
        victim.add_termination_listener(lambda conn: terminated.set_result(conn is victim))
        try:
            pid = await victim.fetchval("SELECT pg_backend_pid()")
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            noticed = await terminated
            with pytest.raises(asyncpg.InterfaceError):
                await victim.fetchval("SELECT 1")
            return noticed, victim.is_closed(), await admin.fetchval("SELECT 2")
        finally:
            victim.terminate()
            await admin.close()

    assert run(main()) == (True, True, 2)
