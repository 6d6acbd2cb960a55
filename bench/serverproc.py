"""Starting, pinning, checking and stopping a benchmark server process."""

import os
import select
import socket
import subprocess
import tempfile
import time

from runinfo import REPO


class ServerError(Exception):
    pass


class Server:
    """A server subprocess pinned to one CPU with `taskset`.

    taskset execs the command, so `pid` is the server's own process and
    /proc/PID/stat counts exactly the server's CPU time. The server either
    prints its port on the first line of stdout (port=None) or listens on
    the port it was given.
    """

    def __init__(self, name, argv, cpu, env=None, port=None):
        self.name = name
        self.port = port
        # A file, not a pipe: nobody reads stderr while the server runs, and
        # a full pipe would block a chatty server.
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *argv], cwd=REPO, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait_ready(self, timeout=20.0):
        """Waits until the server accepts connections; raises ServerError."""
        deadline = time.monotonic() + timeout
        if self.port is None:
            self.port = self._read_port(deadline)
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                if not self.alive() or time.monotonic() > deadline:
                    raise ServerError(self.failure("did not start")) from None
                time.sleep(0.05)
                continue
            # Someone answered: make sure it is us, not another process
            # that holds the port while our server failed to bind it.
            time.sleep(0.1)
            if not self.alive():
                raise ServerError(self.failure("exited"))
            return

    def _read_port(self, deadline):
        line = b""
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ServerError(self.failure("printed no port"))
            chunk = os.read(fd, 100)
            if not chunk:
                raise ServerError(self.failure("exited before printing its port"))
            line += chunk
        try:
            return int(line)
        except ValueError:
            raise ServerError(self.failure(f"printed {line!r}, not a port")) from None

    def stderr_tail(self, limit=3000):
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace")
        return text[-limit:].strip()

    def failure(self, what):
        """A message for a server that misbehaved, with its exit status and stderr."""
        status = self.proc.poll()
        state = "running" if status is None else f"exit status {status}"
        tail = self.stderr_tail()
        return f"{self.name} {what} ({state})" + (f"; stderr:\n{tail}" if tail else "")

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()


def free_port():
    """A port nothing listens on now, for servers that can't report theirs
    (uvicorn). Another process could take it first; then start-up fails
    loudly rather than measuring the wrong server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
