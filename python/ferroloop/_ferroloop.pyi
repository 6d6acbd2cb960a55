"""Type stubs for the Rust extension module ferroloop._ferroloop."""

import contextvars
from asyncio import Future
from collections.abc import Callable
from typing import Any

from _typeshed import FileDescriptorLike

class Handle:
    def cancel(self) -> None: ...
    def cancelled(self) -> bool: ...
    def get_context(self) -> contextvars.Context: ...

class TimerHandle(Handle):
    def when(self) -> float: ...

class LoopBase:
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def time(self) -> float: ...
    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> Handle: ...
    def call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> Handle: ...
    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> TimerHandle: ...
    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> TimerHandle: ...
    def create_future(self) -> Future[Any]: ...
    def _add_reader(
        self, fd: FileDescriptorLike, callback: Callable[..., object], *args: Any
    ) -> Handle: ...
    def _add_writer(
        self, fd: FileDescriptorLike, callback: Callable[..., object], *args: Any
    ) -> Handle: ...
    def _add_reader_until(
        self,
        fd: FileDescriptorLike,
        fut: Future[Any],
        callback: Callable[..., object],
        *args: Any,
    ) -> Handle: ...
    def _add_writer_until(
        self,
        fd: FileDescriptorLike,
        fut: Future[Any],
        callback: Callable[..., object],
        *args: Any,
    ) -> Handle: ...
    def _remove_reader(self, fd: FileDescriptorLike) -> bool: ...
    def _remove_writer(self, fd: FileDescriptorLike) -> bool: ...
    def stop(self) -> None: ...
    def is_running(self) -> bool: ...
    def is_closed(self) -> bool: ...
    def get_debug(self) -> bool: ...
