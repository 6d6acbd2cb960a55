"""A read-only stand-in for the selector loop's private ``_selector``.

Code written against asyncio's selector loop (its own datagram and pipe
transports' reprs, sendfile helpers, some libraries and tests) asks
``loop._selector.get_key(fd)`` which callbacks an fd has. ferroloop keeps
that table in Rust; this view answers the same questions from it. It cannot
register anything: that goes through ``add_reader`` and friends.
"""

import selectors


def _fileobj_to_fd(fileobj):
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class SelectorView:
    """``get_key``/``get_map`` over the loop's fd watchers."""

    def __init__(self, loop):
        self._loop = loop

    def _key(self, fileobj, fd):
        handles = self._loop._fd_handles(fd)
        if handles is None:
            raise KeyError(f"{fileobj!r} is not registered")
        reader, writer = handles
        events = (selectors.EVENT_READ if reader is not None else 0) | (
            selectors.EVENT_WRITE if writer is not None else 0
        )
        return selectors.SelectorKey(fileobj, fd, events, (reader, writer))

    def get_key(self, fileobj):
        return self._key(fileobj, _fileobj_to_fd(fileobj))

    def get_map(self):
        return {fd: self._key(fd, fd) for fd in self._loop._watched_fds()}
