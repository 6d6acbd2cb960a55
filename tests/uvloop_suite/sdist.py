"""The pinned uvloop sdist whose test suite the runner uses, fetched once.

uvloop's files are never part of this repository: the sdist is downloaded
with pip at run time, checked against a pinned hash and unpacked into a cache
directory (``$FERROLOOP_UVLOOP_CACHE``, else ``~/.cache/ferroloop``).  Only
``tests/`` and ``uvloop/_testbase.py`` are extracted.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

VERSION = "0.23.0"
SHA256 = "28d160f51ab4da3b187063652e643dea6831072add4adc1e6d62afbe73b6be27"
ARCHIVE = f"uvloop-{VERSION}.tar.gz"
ROOT = f"uvloop-{VERSION}"
WANTED = (f"{ROOT}/tests/", f"{ROOT}/uvloop/_testbase.py")


class FetchError(RuntimeError):
    pass


def cache_dir():
    base = os.environ.get("FERROLOOP_UVLOOP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ferroloop")
    return os.path.join(base, f"uvloop-{VERSION}")


def ensure(directory=None):
    """Path of the unpacked sdist (containing tests/ and uvloop/_testbase.py),
    downloading it first if the cache does not have it."""
    directory = directory or cache_dir()
    unpacked = os.path.join(directory, ROOT)
    marker = os.path.join(unpacked, ".complete")
    if os.path.exists(marker):
        return unpacked
    os.makedirs(directory, exist_ok=True)
    archive = os.path.join(directory, ARCHIVE)
    if not (os.path.exists(archive) and _sha256(archive) == SHA256):
        _download(directory)
    digest = _sha256(archive)
    if digest != SHA256:
        raise FetchError(f"{archive}: sha256 {digest}, expected {SHA256}")
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and m.name.startswith(WANTED)]
        tar.extractall(directory, members=members, **_filter())
    open(marker, "w").close()
    return unpacked


def _download(directory):
    # --no-binary for uvloop only: pip prepares the sdist's metadata, and
    # ":all:" would build its build dependencies (Cython) from source too.
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
               "--no-deps", "--no-binary", "uvloop", f"uvloop=={VERSION}", "-d", tmp]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        got = os.path.join(tmp, ARCHIVE)
        if proc.returncode != 0 or not os.path.exists(got):
            raise FetchError(f"{' '.join(cmd)} failed:\n{proc.stdout}")
        os.replace(got, os.path.join(directory, ARCHIVE))


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _filter():
    # tarfile's extraction filters exist from 3.12 (and late 3.11 patches).
    return {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


if __name__ == "__main__":
    print(ensure())
