"""Minimal HTTP/1.1 server: an asyncio.Protocol parsing with httptools and
answering every request with the same 1 KiB plaintext body, keep-alive."""

import asyncio

import common
import httptools

BODY = b"x" * 1024
RESPONSE = (b"HTTP/1.1 200 OK\r\n"
            b"Content-Type: text/plain\r\n"
            b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
            b"\r\n" + BODY)
CLOSE_RESPONSE = RESPONSE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)


class HttpProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        # The parser calls back into this object (on_message_complete).
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
            self.transport.close()

    def on_message_complete(self):
        if self.parser.should_keep_alive():
            self.transport.write(RESPONSE)
        else:
            self.transport.write(CLOSE_RESPONSE)
            self.transport.close()


async def main(args):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HttpProtocol, "127.0.0.1", args.port,
                                      backlog=args.backlog)
    common.announce(server.sockets[0])
    await server.serve_forever()


if __name__ == "__main__":
    common.run(main, common.parse_args(__doc__))
