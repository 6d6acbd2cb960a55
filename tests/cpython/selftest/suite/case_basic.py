"""Self-test fixture: one test per result category of the harness."""

import asyncio
import unittest


def new_loop_and_close():
    asyncio.new_event_loop().close()  # goes through the target's policy


class Basic(unittest.TestCase):
    def test_pass(self):
        new_loop_and_close()

    def test_fail(self):
        new_loop_and_close()
        self.assertEqual(1, 2)

    def test_error(self):
        new_loop_and_close()
        raise RuntimeError("boom")

    def test_subtest_fail(self):
        new_loop_and_close()
        for i in range(3):
            with self.subTest(i=i):
                self.assertNotEqual(i, 1)

    def test_listed_fail(self):
        new_loop_and_close()
        self.fail("expected to fail")

    def test_listed_pass(self):
        new_loop_and_close()

    def test_not_counted_fail(self):
        self.fail("no target loop was created, so this is not counted")

    def test_skip(self):
        self.skipTest("skipped by the test")

    @unittest.expectedFailure
    def test_unexpected_success(self):
        new_loop_and_close()

    def test_default_policy_is_target(self):
        # tearDownModule in CPython's tests resets the policy to the default;
        # the default must still be the target.
        asyncio.set_event_loop_policy(None)
        loop = asyncio.new_event_loop()
        try:
            self.assertEqual(type(loop).__name__, "EpollSelectorEventLoop")
        finally:
            loop.close()


class Skipped(unittest.TestCase):
    def test_would_fail(self):
        self.fail("listed as [skip], must not run")


class BrokenFixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise RuntimeError("setUpClass failed")

    def test_never_runs(self):
        pass


# Selector flavours as in test_events: only the EPoll class runs, the others
# are "n/a"; create_event_loop is replaced by the target factory.
class LoopMixin:
    def create_event_loop(self):
        raise AssertionError("should have been replaced by the harness")

    def test_uses_target(self):
        loop = self.create_event_loop()
        try:
            self.assertEqual(type(loop).__name__, "EpollSelectorEventLoop")
        finally:
            loop.close()


class EPollEventLoopTests(LoopMixin, unittest.TestCase):
    pass


class PollEventLoopTests(LoopMixin, unittest.TestCase):
    pass


class SelectEventLoopTests(LoopMixin, unittest.TestCase):
    pass
