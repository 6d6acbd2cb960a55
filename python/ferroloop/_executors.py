"""Executors and DNS: ``run_in_executor``, the default executor,
``getaddrinfo`` and ``getnameinfo`` (run in the default executor, as asyncio
does, so that patches of ``socket.getaddrinfo`` apply)."""

import concurrent.futures
import socket
import threading
import warnings
from asyncio import futures, timeouts

from ._default_executor import DEFAULT_EXECUTOR, LoopExecutor
from ._errors import logger
from ._support import check_callback


def _set_result_unless_cancelled(fut, result):
    if not fut.cancelled():
        fut.set_result(result)


class ExecutorsMixin:
    """The executor part of ``ferroloop.Loop``."""

    def run_in_executor(self, executor, func, *args):
        self._check_closed()
        if self.get_debug():
            check_callback(func, "run_in_executor")
        if executor is None:
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            executor = self._default_executor
            if executor is None:
                executor = DEFAULT_EXECUTOR(thread_name_prefix="asyncio")
                self._default_executor = executor
        if type(executor) is LoopExecutor:
            return executor._run_for_loop(self, func, args)
        return futures.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor):
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor instance")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout=None):
        """Shut the default executor down, waiting for its threads (at most
        `timeout` seconds) in a helper thread so the loop keeps running."""
        self._executor_shutdown_called = True
        if self._default_executor is None:
            return
        done = self.create_future()
        thread = threading.Thread(target=self._shutdown_executor_in_thread, args=(done,))
        thread.start()
        try:
            async with timeouts.timeout(timeout):
                await done
        except TimeoutError:
            warnings.warn(
                "The executor did not finishing joining its threads within "
                f"{timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            self._default_executor.shutdown(wait=False)
        else:
            thread.join()

    def _shutdown_executor_in_thread(self, done):
        try:
            self._default_executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(_set_result_unless_cancelled, done, None)
        except Exception as ex:
            if not self.is_closed() and not done.cancelled():
                self.call_soon_threadsafe(done.set_exception, ex)

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        resolve = self._getaddrinfo_debug if self.get_debug() else socket.getaddrinfo
        return await self.run_in_executor(None, resolve, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr, flags=0):
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    def _getaddrinfo_debug(self, host, port, family, type, proto, flags):
        parts = [f"{host}:{port!r}"]
        options = (("family", family), ("type", type), ("proto", proto), ("flags", flags))
        for label, value in options:
            if value:
                parts.append(f"{label}={value!r}")
        what = ", ".join(parts)
        logger.debug("Get address info %s", what)
        started = self.time()
        addrinfo = socket.getaddrinfo(host, port, family, type, proto, flags)
        elapsed = self.time() - started
        message = f"Getting address info {what} took {elapsed * 1e3:.3f}ms: {addrinfo!r}"
        if elapsed >= self.slow_callback_duration:
            logger.info(message)
        else:
            logger.debug(message)
        return addrinfo
