"""Self-test fixture: the middle test hangs; the last must still run."""

import asyncio
import time
import unittest


class Hang(unittest.TestCase):
    def test_1_before(self):
        asyncio.new_event_loop().close()

    def test_2_sleeps_forever(self):
        asyncio.new_event_loop().close()
        time.sleep(3600)

    def test_3_after(self):
        asyncio.new_event_loop().close()


class HangInFixture(unittest.TestCase):
    """tearDownClass never returns: a stall outside any test."""

    @classmethod
    def tearDownClass(cls):
        time.sleep(3600)

    def test_runs(self):
        asyncio.new_event_loop().close()
