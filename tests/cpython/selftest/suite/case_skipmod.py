"""Self-test fixture: a module that skips itself (like test_windows_events)."""

import unittest

raise unittest.SkipTest("not on this platform")
