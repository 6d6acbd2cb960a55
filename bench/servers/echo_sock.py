"""Echo server on the loop's sock_* coroutines: sock_accept, sock_recv,
sock_sendall on plain non-blocking sockets, no transports."""

import asyncio
import socket

import common


async def echo(loop, conn):
    with conn:
        try:
            while data := await loop.sock_recv(conn, common.READ_SIZE):
                await loop.sock_sendall(conn, data)
        except ConnectionError:
            pass  # the load generator hung up mid-request: the run is over


async def main(args):
    loop = asyncio.get_running_loop()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(args.backlog)
    listener.setblocking(False)
    common.announce(listener)
    tasks = set()  # the loop keeps only weak references to tasks
    while True:
        conn, _ = await loop.sock_accept(listener)
        conn.setblocking(False)
        # The transports of the other servers set this; do the same here.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = loop.create_task(echo(loop, conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


if __name__ == "__main__":
    common.run(main, common.parse_args(__doc__))
