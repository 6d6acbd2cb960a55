"""Self-test fixture: the middle test segfaults; the last must still run."""

import asyncio
import faulthandler
import unittest


class Crash(unittest.TestCase):
    def test_1_before(self):
        asyncio.new_event_loop().close()

    def test_2_segfault(self):
        faulthandler._sigsegv()  # a real SIGSEGV (CPython's own test hook)

    def test_3_after(self):
        asyncio.new_event_loop().close()
