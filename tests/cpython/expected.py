"""The expected-failures list: parsing, matching, and rewriting.

File format (one entry per line; blank lines and '#' comment lines allowed):

    [TAGS...] TEST_ID  # reason (required)

TEST_ID is the harness's test id, e.g.
``test_events.EPollEventLoopTests.test_create_server`` (module.Class.method,
without the ``test.test_asyncio.`` package prefix).

Optional tags, each in square brackets before the id:
    [3.12]        only on Python 3.12
    [3.12+]       on 3.12 and later
    [-3.12]       on 3.12 and earlier
    [3.11-3.12]   on 3.11 through 3.12
    [skip]        do not even run it (for hangs/crashes that waste the
                  timeout); a skip entry may name a whole module or class.
Entries without a version tag apply to every version.  When several entries
name the same test, the first one that applies to the running version wins.

Meaning: a listed test is expected to end in a failing outcome (fail, error,
hang, crash, unexpected-success).  If it passes instead the run fails with
"now passing, remove it from the list" (not for [skip] entries, which are
never run).
"""

import re

# Oldest Python the project supports (pyproject.toml: requires-python >= 3.11);
# narrowing an entry never produces a range entirely below it.
OLDEST_MINOR = 11

_LINE = re.compile(r"^\s*((?:\[[^\]]*\]\s*)*)([\w.<>-]+)\s*(?:#\s*(.*?))?\s*$")
_VERSION = re.compile(r"^(-)?3\.(\d+)(\+|-3\.(\d+))?$")


class FormatError(ValueError):
    pass


class Entry:
    def __init__(self, test_id, reason, lo=None, hi=None, skip=False, lineno=0):
        self.test_id = test_id
        self.reason = reason
        self.lo, self.hi = lo, hi  # minor-version bounds, None = open
        self.skip = skip
        self.lineno = lineno

    def applies(self, minor):
        return ((self.lo is None or minor >= self.lo) and
                (self.hi is None or minor <= self.hi))

    def version_tag(self):
        lo, hi = self.lo, self.hi
        if lo is None and hi is None:
            return ""
        if lo == hi:
            return f"[3.{lo}]"
        if hi is None:
            return f"[3.{lo}+]"
        if lo is None:
            return f"[-3.{hi}]"
        return f"[3.{lo}-3.{hi}]"

    def render(self):
        tags = " ".join(t for t in (self.version_tag(), "[skip]" if self.skip else "") if t)
        return f"{tags + ' ' if tags else ''}{self.test_id}  # {self.reason}"


def parse_line(text, lineno=0):
    """An Entry, or None for blank/comment lines.  Raises FormatError."""
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    m = _LINE.match(stripped)
    if not m:
        raise FormatError(f"line {lineno}: cannot parse: {stripped!r}")
    tags_text, test_id, reason = m.groups()
    if not reason:
        raise FormatError(f"line {lineno}: {test_id}: missing '# reason'")
    entry = Entry(test_id, reason, lineno=lineno)
    versioned = False
    for tag in re.findall(r"\[([^\]]*)\]", tags_text):
        for token in tag.split():
            if token == "skip":
                entry.skip = True
                continue
            v = _VERSION.match(token)
            if not v or versioned:
                raise FormatError(f"line {lineno}: bad tag [{token}]")
            versioned = True
            below, minor, suffix, upper = v.groups()
            minor = int(minor)
            if below:
                entry.hi = minor
            elif suffix == "+":
                entry.lo = minor
            elif suffix:
                entry.lo, entry.hi = minor, int(upper)
            else:
                entry.lo = entry.hi = minor
    return entry


class ExpectedList:
    def __init__(self, path):
        self.path = path
        try:
            with open(path, encoding="utf-8") as f:
                self.lines = f.read().splitlines()
        except FileNotFoundError:
            self.lines = []
        # Line index -> Entry (comments/blank lines have none).
        self.entries = {}
        for i, line in enumerate(self.lines):
            entry = parse_line(line, i + 1)
            if entry is not None:
                self.entries[i] = entry

    def lookup(self, test_id, minor):
        """The entry that applies to test_id on 3.<minor>, or None.
        Exact ids only; [skip] prefixes are handled by skip_prefixes()."""
        for entry in self.entries.values():
            if entry.test_id == test_id and entry.applies(minor):
                return entry
        return None

    def skip_prefixes(self, minor):
        return [e.test_id for e in self.entries.values() if e.skip and e.applies(minor)]

    def update(self, minor, now_passing, new_failures, reason):
        """Rewrite the file after a run on 3.<minor>.

        now_passing: entries (from lookup) whose test passed: removed, or,
        if the entry also covers other versions, narrowed to exclude this one.
        new_failures: test ids to add as ``[3.<minor>] id  # reason``.
        Finally entries with the same id, reason and skip flag whose version
        ranges touch are merged, so updating on 3.11, 3.12 and 3.13 in turn
        yields one ``[3.11-3.13]`` line rather than three.
        """
        out = []  # list of str or Entry, in file order
        passing = {id(e) for e in now_passing}
        for i, line in enumerate(self.lines):
            entry = self.entries.get(i)
            if entry is None:
                out.append(line)
            elif id(entry) in passing:
                out.extend(self._without(entry, minor))
            else:
                out.append(entry)
        out.extend(Entry(t, reason, minor, minor) for t in sorted(new_failures))
        out = self._merge(out)
        text = "\n".join(x.render() if isinstance(x, Entry) else x for x in out)
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text.rstrip("\n") + "\n")

    @staticmethod
    def _without(entry, minor):
        parts = []
        if (entry.lo is None or entry.lo < minor) and minor - 1 >= OLDEST_MINOR:
            lo = OLDEST_MINOR if entry.lo is None else entry.lo
            parts.append(Entry(entry.test_id, entry.reason, lo, minor - 1, entry.skip))
        if entry.hi is None or entry.hi > minor:
            parts.append(Entry(entry.test_id, entry.reason, minor + 1, entry.hi, entry.skip))
        return parts

    @staticmethod
    def _merge(items):
        merged = []
        for item in items:
            if isinstance(item, Entry):
                for prev in merged:
                    if (isinstance(prev, Entry) and prev.test_id == item.test_id
                            and prev.reason == item.reason and prev.skip == item.skip
                            and _touch(prev, item)):
                        prev.lo = None if None in (prev.lo, item.lo) else min(prev.lo, item.lo)
                        prev.hi = None if None in (prev.hi, item.hi) else max(prev.hi, item.hi)
                        break
                else:
                    merged.append(item)
            else:
                merged.append(item)
        return merged


def _touch(a, b):
    """Do the version ranges of a and b overlap or sit side by side?"""
    inf = float("inf")
    a_lo, a_hi = a.lo if a.lo is not None else -inf, a.hi if a.hi is not None else inf
    b_lo, b_hi = b.lo if b.lo is not None else -inf, b.hi if b.hi is not None else inf
    return a_lo <= b_hi + 1 and b_lo <= a_hi + 1
