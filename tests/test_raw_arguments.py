"""Argument binding of the raw methods that take keywords (`call_at`,
`call_later`, `create_task`, `set_task_factory`; src/eventloop/raw_args.rs):
every way of passing arguments that asyncio's Python methods accept works,
and every wrong call raises the stock loop's TypeError word for word
(keywords first, then counts; `self=`; keyword-only arguments mentioned in
the count; 3.13's "Did you mean" suggestion). test_wrong_arity.py sweeps
the simple cases for every method; these are the finer ones.
"""

import asyncio

import pytest


def callback(*args):
    pass


async def coroutine():
    pass


# (method, args, kwargs) that the stock loop refuses.
WRONG_CALLS = [
    ("call_at", (1,), {}),
    ("call_at", (), {"callback": callback}),
    ("call_at", (1, callback), {"when": 2}),
    ("call_at", (1,), {"foo": 1, "callback": callback}),
    ("call_at", (), {"self": 2}),
    ("call_at", (1, callback), {"context": None, "contxt": 1}),
    ("call_at", (1, callback), {"whn": 1}),
    ("call_later", (None, callback), {}),
    ("call_later", (), {"delay": 1}),
    ("call_later", (1, callback), {"callback": callback}),
    ("call_later", (1, callback), {"Delay": 1}),
    ("create_task", (1, 2, 3), {"name": "x"}),
    ("create_task", (1, 2), {"name": "x", "context": None}),
    ("create_task", (), {"name": "x"}),
    ("create_task", (), {"coro": 5}),
    ("create_task", (5,), {"coro": 5}),
    ("create_task", (5,), {"nme": 5}),
    ("create_task", (5,), {"self": 5, "coro": 5}),
    ("set_task_factory", (), {"factory": 1}),
    ("set_task_factory", (None,), {"factory": None}),
    ("set_task_factory", (None,), {"factori": None}),
    ("set_task_factory", (1, 2), {"factory": None}),
]


@pytest.fixture
def ferro_loop(ferroloop_module):
    loop = ferroloop_module.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize(("name", "args", "kwargs"), WRONG_CALLS, ids=repr)
def test_wrong_call_raises_like_stock(name, args, kwargs, ferro_loop, stock_loop, check_same_error):
    check_same_error(lambda loop: getattr(loop, name)(*args, **kwargs), ferro_loop, stock_loop)


def test_keyword_names_must_be_strings(ferro_loop, stock_loop, check_same_error):
    for name in ("call_at", "call_later", "create_task", "set_task_factory"):
        check_same_error(lambda loop: getattr(loop, name)(**{1: 2}), ferro_loop, stock_loop)


def test_positional_parameters_pass_by_keyword(ferro_loop):
    ran = []

    def record(*args):
        ran.append(args)

    ferro_loop.call_later(delay=0, callback=record, context=None)
    ferro_loop.call_at(callback=record, when=ferro_loop.time())
    ferro_loop.call_at(ferro_loop.time(), record, "x", context=None)
    task = ferro_loop.create_task(coro=coroutine(), name="named")
    ferro_loop.run_until_complete(task)
    assert task.get_name() == "named"
    ferro_loop.run_until_complete(asyncio.sleep(0.01))
    assert sorted(ran) == [(), (), ("x",)]


def test_set_task_factory_by_keyword(ferro_loop):
    def factory(loop, coro, **kwargs):
        return asyncio.Task(coro, loop=loop, **kwargs)

    assert ferro_loop.set_task_factory(factory=factory) is None
    assert ferro_loop.get_task_factory() is factory
    ferro_loop.set_task_factory(factory=None)
    assert ferro_loop.get_task_factory() is None


def test_timer_arguments_reach_the_callback(ferro_loop):
    got = []
    ferro_loop.call_later(0, lambda *a: got.append(a))
    ferro_loop.call_later(0, lambda *a: got.append(a), 1)
    ferro_loop.call_later(0, lambda *a: got.append(a), 1, 2, 3)
    handle = ferro_loop.call_at(ferro_loop.time() + 100, callback, 1, 2)
    assert handle._args == (1, 2)
    handle.cancel()
    ferro_loop.run_until_complete(asyncio.sleep(0.01))
    assert got == [(), (1,), (1, 2, 3)]
