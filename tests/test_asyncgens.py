"""Asynchronous generator finalization and loop.shutdown_asyncgens()."""

import asyncio
import gc
import sys

import pytest


def make_agen(log, name="agen"):
    async def agen():
        try:
            yield 1
            yield 2
            yield 3
        finally:
            log.append(f"{name}-finally-start")
            await asyncio.sleep(0)  # finalization may await
            log.append(f"{name}-finally-end")

    return agen()


def test_asyncgen_hooks_installed_while_running_and_restored(loop):
    before = sys.get_asyncgen_hooks()
    seen = []
    loop.call_soon(lambda: seen.append(sys.get_asyncgen_hooks()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen[0].firstiter is not None
    assert seen[0].finalizer is not None
    assert sys.get_asyncgen_hooks() == before


def test_asyncgen_hooks_restored_after_exception(loop):
    before = sys.get_asyncgen_hooks()

    def raiser():
        raise KeyboardInterrupt

    loop.call_soon(raiser)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert sys.get_asyncgen_hooks() == before


def test_preexisting_asyncgen_hooks_are_restored(loop):
    def firstiter(agen):
        pass

    def finalizer(agen):
        pass

    old = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    try:
        loop.run_until_complete(asyncio.sleep(0))
        assert sys.get_asyncgen_hooks() == (firstiter, finalizer)
    finally:
        sys.set_asyncgen_hooks(*old)


def test_shutdown_asyncgens_finalizes_abandoned_generator(loop):
    log = []
    keep = []

    async def main():
        gen = make_agen(log)
        keep.append(gen)
        assert await gen.__anext__() == 1

    loop.run_until_complete(main())
    assert log == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert log == ["agen-finally-start", "agen-finally-end"]


def test_exhausted_generator_is_not_finalized_again(loop):
    log = []

    async def main():
        return [x async for x in make_agen(log)]

    assert loop.run_until_complete(main()) == [1, 2, 3]
    assert log == ["agen-finally-start", "agen-finally-end"]
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert log == ["agen-finally-start", "agen-finally-end"]


def test_garbage_collected_generator_is_finalized_on_the_loop(loop):
    log = []
    in_loop = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            in_loop.append(asyncio.get_running_loop() is loop)
            await asyncio.sleep(0)
            log.append("finalized")

    async def main():
        gen = agen()
        await gen.__anext__()
        del gen
        gc.collect()
        for _ in range(10):
            if log:
                break
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert log == ["finalized"]
    assert in_loop == [True]


def test_generator_closing_error_reaches_exception_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    keep = []

    async def bad_agen():
        try:
            yield 1
        finally:
            raise ZeroDivisionError("in aclose")

    async def main():
        gen = bad_agen()
        keep.append(gen)
        await gen.__anext__()

    loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert len(contexts) == 1
    ctx = contexts[0]
    assert ctx["message"].startswith(
        "an error occurred during closing of asynchronous generator "
    )
    assert ctx["asyncgen"] is keep[0]
    assert isinstance(ctx["exception"], ZeroDivisionError)


def test_generator_started_after_shutdown_warns(loop):
    loop.run_until_complete(loop.shutdown_asyncgens())

    async def agen():
        yield 1

    async def main():
        gen = agen()
        with pytest.warns(ResourceWarning, match="was scheduled after loop.shutdown_asyncgens"):
            await gen.__anext__()
        await gen.aclose()

    loop.run_until_complete(main())
