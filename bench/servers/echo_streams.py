"""Echo server on asyncio streams: read, write, drain, per connection."""

import asyncio

import common


async def echo(reader, writer):
    try:
        while data := await reader.read(common.READ_SIZE):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the load generator hung up mid-request: the run is over
    finally:
        writer.close()


async def main(args):
    server = await asyncio.start_server(echo, "127.0.0.1", args.port, backlog=args.backlog)
    common.announce(server.sockets[0])
    await server.serve_forever()


if __name__ == "__main__":
    common.run(main, common.parse_args(__doc__))
