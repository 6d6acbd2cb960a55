"""Every public loop method called with the wrong number of arguments:
ferroloop must raise what the stock loop raises, same type and message.

The cases are derived from the stock loop itself, per Python version: each
public method of `asyncio.new_event_loop()` that `ferroloop.Loop` also has,
called with no arguments, with one positional argument more than it takes,
with 20 positional arguments, and with an unknown keyword; a case is left
out when the stock signature accepts those arguments (`close()` takes no
argument, `call_soon` takes `*args`, ...). The messages are never written
here: the stock loop's message is the expectation (they change between
versions: "BaseEventLoop.call_at() missing 2 required positional
arguments: 'when' and 'callback'").

KNOWN_DIFFERENCES lists the cases that still differ, each with its reason
(also in docs/differences.md); they are strict xfails, so a case that starts
matching must leave the table.
"""

import asyncio
import inspect
import sys

import pytest
from conftest import _ferroloop

# (method, case) -> why ferroloop's message differs; `case` as in _cases_for.
KNOWN_DIFFERENCES = {
    # Accepted on 3.11 on purpose (docs/differences.md): the 3.12 signature.
    **(
        {
            ("shutdown_default_executor", "one too many"): "takes timeout= on 3.11",
            ("shutdown_default_executor", "20 positional"): "takes timeout= on 3.11",
        }
        if sys.version_info < (3, 12)
        else {}
    ),
}

UNKNOWN_KEYWORD = "no_such_argument"


def _positional_capacity(signature):
    """How many positional arguments `signature` takes (None: any number)."""
    count = 0
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return None
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def _cases_for(signature):
    """{case: (args, kwargs)} of the wrong calls to a method of `signature`
    (a bound method's, without `self`)."""
    capacity = _positional_capacity(signature)
    candidates = {
        "no arguments": ((), {}),
        "unknown keyword": ((), {UNKNOWN_KEYWORD: 1}),
    }
    if capacity is not None:
        candidates["one too many"] = ((None,) * (capacity + 1), {})
        candidates["20 positional"] = ((None,) * 20, {})
    cases = {}
    for case, (args, kwargs) in candidates.items():
        try:
            signature.bind(*args, **kwargs)
        except TypeError:
            cases[case] = (args, kwargs)  # a wrong call: test it
    return cases


def _collect():
    """pytest params: (method, case, args, kwargs) for every wrong call."""
    if _ferroloop is None:
        return []  # nothing to compare with (conftest explains the skip)
    stock = asyncio.new_event_loop()
    try:
        params = []
        for name in sorted(dir(stock)):
            method = getattr(stock, name)
            if name.startswith("_") or not callable(method):
                continue
            if not hasattr(_ferroloop.Loop, name):
                continue
            for case, (args, kwargs) in _cases_for(inspect.signature(method)).items():
                marks = []
                if (name, case) in KNOWN_DIFFERENCES:
                    reason = KNOWN_DIFFERENCES[name, case]
                    marks.append(pytest.mark.xfail(strict=True, reason=reason))
                params.append(
                    pytest.param(name, args, kwargs, id=f"{name}-{case}", marks=marks)
                )
        return params
    finally:
        stock.close()


PARAMS = _collect()


@pytest.fixture
def ferro_loop(ferroloop_module):
    loop = ferroloop_module.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize(("name", "args", "kwargs"), PARAMS)
def test_wrong_call_raises_like_stock(name, args, kwargs, ferro_loop, stock_loop, check_same_error):
    def call(loop):
        result = getattr(loop, name)(*args, **kwargs)
        if inspect.iscoroutine(result):
            result.close()  # accepted: check_same_error reports it

    check_same_error(call, ferro_loop, stock_loop)


def test_cases_cover_the_api():
    """The sweep sees the whole API (a broken collection would pass)."""
    if _ferroloop is None:
        pytest.skip("ferroloop is not importable")
    names = {p.values[0] for p in PARAMS}
    assert {"call_at", "create_task", "run_in_executor", "sock_recv", "time"} <= names
    assert len(names) > 40


def test_known_differences_are_current():
    """Every KNOWN_DIFFERENCES entry names a case that is generated."""
    if _ferroloop is None:
        pytest.skip("ferroloop is not importable")
    generated = {p.id for p in PARAMS}
    for name, case in KNOWN_DIFFERENCES:
        assert f"{name}-{case}" in generated, (name, case)


def test_methods_carry_stock_qualnames(ferro_loop, stock_loop):
    """Methods asyncio defines in Python carry the stock `__qualname__`
    (which CPython words the TypeErrors with), and still pickle."""
    import pickle

    for name in ("run_in_executor", "set_debug", "sock_recv", "add_signal_handler"):
        ours = getattr(type(ferro_loop), name)
        assert ours.__qualname__ == getattr(type(stock_loop), name).__qualname__
        assert pickle.loads(pickle.dumps(ours)) is ours
    coro = ferro_loop.getaddrinfo("localhost", 80)
    try:
        assert coro.__qualname__ == "BaseEventLoop.getaddrinfo"
    finally:
        coro.close()
