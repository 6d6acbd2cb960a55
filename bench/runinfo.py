"""What every network benchmark report starts with: which loops are there
(and their versions), the interpreter, the machine and the git commit, so a
table can always be traced back to the code that produced it."""

import argparse
import asyncio
import os
import platform
import subprocess
import sys

LOOP_NAMES = ("asyncio", "uvloop", "ferroloop")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def loop_versions(names):
    """Map loop name -> (available, version or the reason it is skipped).

    The servers import their loop themselves; importing it here too finds a
    missing or broken loop once, before any server is started.
    """
    found = {}
    for name in names:
        if name == "asyncio":
            found[name] = (True, f"{asyncio.SelectorEventLoop.__name__}, "
                                 f"Python {platform.python_version()}")
            continue
        try:
            module = __import__(name)
            found[name] = (True, getattr(module, "__version__", "version unknown"))
        except Exception as exc:  # not installed, or a broken build: skip it
            found[name] = (False, f"{type(exc).__name__}: {exc}")
    return found


def git_commit():
    """Short commit of this checkout, with `+dirty` if it has local changes."""
    def git(*args):
        return subprocess.run(["git", "-C", REPO, *args], capture_output=True,
                              text=True, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def header(found, command):
    """Lines describing the run; also returned as a dict for the JSON."""
    info = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "commit": git_commit(),
        "command": command,
        "loops": {name: {"available": ok, "info": text} for name, (ok, text) in found.items()},
    }
    lines = [
        f"python:  {platform.python_implementation()} {info['python']} on {info['platform']}, "
        f"{info['cpus']} CPUs",
        f"commit:  {info['commit']}",
        f"command: {command}",
    ]
    lines += [f"{name + ':':<10} {text}" if ok else f"{name + ':':<10} skipped ({text})"
              for name, (ok, text) in found.items()]
    return lines, info


def comma_list(choices):
    """argparse type for a comma-separated subset of `choices`, order kept."""
    def parse(text):
        items = list(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
        unknown = [x for x in items if x not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(choices)}")
        return items
    return parse
