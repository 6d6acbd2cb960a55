"""Tasks: ``create_task`` and the task factory."""

import sys
from asyncio import tasks

# 3.13 names factory-made tasks even when name is None; earlier versions
# leave their default name alone.
_ALWAYS_SET_NAME = sys.version_info >= (3, 13)


class TasksMixin:
    """The task part of ``ferroloop.Loop``."""

    def create_task(self, coro, *, name=None, context=None):
        """Schedule a coroutine object; return a Task."""
        self._check_closed()
        factory = self._task_factory
        if factory is None:
            task = tasks.Task(coro, loop=self, name=name, context=context)
            if task._source_traceback:
                del task._source_traceback[-1]
            return task
        if context is None:
            task = factory(self, coro)
        else:
            task = factory(self, coro, context=context)
        if name is not None or _ALWAYS_SET_NAME:
            task.set_name(name)
        return task

    def set_task_factory(self, factory):
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self):
        return self._task_factory
