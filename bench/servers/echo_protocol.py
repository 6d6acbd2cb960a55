"""Echo server on asyncio.Protocol: every chunk received is written back."""

import asyncio

import common


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main(args):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", args.port, backlog=args.backlog)
    common.announce(server.sockets[0])
    await server.serve_forever()


if __name__ == "__main__":
    common.run(main, common.parse_args(__doc__))
