"""Large outputs through subprocess pipes: hundreds of MiB streamed with
bounded memory (flow control on both pipes), and communicate() with two
full pipes at once."""

import asyncio
import re
import zlib
from asyncio.subprocess import DEVNULL, PIPE

import pytest
from subprocess_util import SH, run

MiB = 1024 * 1024
PATTERN = b"0123456789abcdef\n"  # what `yes 0123456789abcdef` prints


def pattern_crc(total):
    """CRC-32 of the first `total` bytes of PATTERN repeated."""
    block = PATTERN * (MiB // len(PATTERN))  # a whole number of patterns
    crc = 0
    for _ in range(total // len(block)):
        crc = zlib.crc32(block, crc)
    return zlib.crc32(block[:total % len(block)], crc)


def _status_kib(field):
    with open("/proc/self/status") as fh:
        return int(re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.M).group(1))


class PeakMemory:
    """Peak resident memory growth (bytes) over the `with` block.

    Resets the kernel's high-water mark (VmHWM) first, by writing 5 to
    /proc/self/clear_refs, so earlier tests' peaks don't hide ours.
    """

    def __enter__(self):
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError as exc:
            pytest.skip(f"cannot reset the peak RSS (/proc/self/clear_refs): {exc}")
        self.start = _status_kib("VmRSS")
        return self

    def __exit__(self, *exc):
        self.growth = (_status_kib("VmHWM") - self.start) * 1024
        return False


def test_200_mib_streamed_from_stdout_with_bounded_memory(loop):
    total = 200 * MiB

    async def main():
        proc = await asyncio.create_subprocess_shell(
            f"yes 0123456789abcdef | head -c {total}", stdout=PIPE, stdin=DEVNULL)
        crc, got = 0, 0
        while chunk := await proc.stdout.read(256 * 1024):
            crc = zlib.crc32(chunk, crc)
            got += len(chunk)
        return got, crc, await proc.wait()

    with PeakMemory() as peak:
        got, crc, code = run(loop, main(), timeout=60)
    assert (got, code) == (total, 0)
    assert crc == pattern_crc(total)
    # Unbounded buffering would need ~200 MiB; a few MiB is the norm.
    assert peak.growth < 32 * MiB, f"peak RSS grew by {peak.growth / MiB:.1f} MiB"


def test_128_mib_through_cat_keeps_both_buffers_bounded(loop):
    # Writer and reader run at once; cat is the pump. The StreamReader must
    # pause the pipe when its buffer passes 2 * limit (so the buffer never
    # holds much more than that plus one read), and drain() must hold the
    # writer back at the transport's high-water mark.
    total, limit = 128 * MiB, 64 * 1024
    max_read = 256 * 1024  # bytes asyncio's pipe transport asks for per read
    block = PATTERN * (MiB // len(PATTERN))

    async def main():
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=PIPE, stdout=PIPE, limit=limit)
        high = proc.stdin.transport.get_write_buffer_limits()[1]
        worst = {"reader": 0, "writer": 0}

        async def write():
            sent = 0
            while sent < total:
                chunk = block[:total - sent]
                proc.stdin.write(chunk)
                sent += len(chunk)
                await proc.stdin.drain()
                worst["writer"] = max(worst["writer"], proc.stdin.transport.get_write_buffer_size())
            proc.stdin.close()
            return high

        async def read():
            crc, got = 0, 0
            while True:
                # The buffer is asyncio's (the same on every loop); how full it
                # gets depends on the loop honouring pause_reading().
                worst["reader"] = max(worst["reader"], len(proc.stdout._buffer))
                chunk = await proc.stdout.read(limit)
                if not chunk:
                    return got, crc
                crc = zlib.crc32(chunk, crc)
                got += len(chunk)

        _, (got, crc) = await asyncio.gather(write(), read())
        return got, crc, await proc.wait(), worst, high

    got, crc, code, worst, high = run(loop, main(), timeout=60)
    assert (got, code) == (total, 0)
    assert crc == pattern_crc(total)
    assert worst["reader"] <= 2 * limit + max_read, worst
    assert worst["writer"] <= high, worst


def test_communicate_collects_two_full_pipes_at_once(loop):
    # 8 MiB on each pipe, the child writing stdout first: communicate() has
    # to drain both concurrently or the child blocks forever on stdout.
    size = 8 * MiB

    async def main():
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", f"head -c {size} /dev/zero; head -c {size} /dev/zero >&2",
            stdout=PIPE, stderr=PIPE)
        out, err = await proc.communicate()
        return len(out), len(err), out.count(0), proc.returncode

    assert run(loop, main()) == (size, size, size, 0)


def test_large_input_and_output_via_communicate(loop):
    data = bytes(range(256)) * (16 * MiB // 256)

    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(data)
        return out == data, proc.returncode

    assert run(loop, main()) == (True, 0)
