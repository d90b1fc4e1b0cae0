"""The state file format (forum/statefile.py), without a forum: round trip, and every
way a file is refused (one log line each, nothing unpickled from a refused file)."""

from __future__ import annotations

import gc
from pathlib import Path

import orjson
import pytest
from structlog.testing import capture_logs

from forum import statefile
from forum.scores.ledger import Ledger


def _write(path: Path, code: str = "c1", engine: str = "scores") -> statefile.StateFile:
    sf = statefile.StateFile(path, engine, code)
    sf.write(7, "ab" * 32, [statefile.dumps({"head": 7}), statefile.dumps(Ledger(head=7))])
    return sf


def test_round_trip_and_atomic_write(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    sf = _write(path)
    h = sf.header()
    assert h is not None and (h.head, h.head_id, h.engine) == (7, "ab" * 32, "scores")
    assert sf.section(h, 0) == {"head": 7}
    assert sf.section(h, 1) == Ledger(head=7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.bin"]  # no temporary file left


def test_no_file_is_silent(tmp_path: Path) -> None:
    with capture_logs() as logs:
        assert statefile.StateFile(tmp_path / "none.bin", "scores", "c1").header() is None
    assert logs == []


def _refused(sf: statefile.StateFile, reason: str) -> None:
    with capture_logs() as logs:
        assert sf.header() is None
    assert len(logs) == 1 and logs[0]["event"].startswith("state file ignored"), logs
    assert reason in logs[0]["reason"], logs


@pytest.mark.parametrize(
    ("change", "reason"),
    [("format", "format"), ("engine", "engine"), ("code", "other code"), ("magic", "not a state file"), ("header", "corrupt header")],
)
def test_a_foreign_file_is_refused_with_one_line(tmp_path: Path, change: str, reason: str) -> None:
    path = tmp_path / "s.bin"
    sf = _write(path)
    data = path.read_bytes()
    end = data.index(b"\n", len(statefile.MAGIC))
    header = orjson.loads(data[len(statefile.MAGIC) : end])
    if change == "magic":
        data = b"X" + data[1:]
    elif change == "header":
        data = data[: len(statefile.MAGIC)] + b"{not json" + data[end:]
    else:
        header[change] = {"format": statefile.FORMAT - 1, "engine": "values", "code": "c2"}[change]
        data = data[: len(statefile.MAGIC)] + orjson.dumps(header) + data[end:]
    path.write_bytes(data)
    _refused(sf, reason)


def test_a_damaged_or_truncated_section_is_refused_before_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    sf = _write(path)
    h = sf.header()
    assert h is not None
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    assert sf.section(h, 0) == {"head": 7}  # the serving section is intact
    with pytest.raises(ValueError, match="checksum"):
        sf.section(h, 1)
    path.write_bytes(bytes(data[:-50]))
    with pytest.raises(ValueError, match="checksum"):
        sf.section(h, 1)


def test_the_code_key_follows_the_rules_and_settings() -> None:
    assert statefile.code_key("scores") == statefile.code_key("scores")
    assert statefile.code_key("values", "Rules(min_age=200)") != statefile.code_key("values", "Rules(min_age=20)")


def test_fork_dump_pickles_a_snapshot_in_a_child_while_the_caller_goes_on(tmp_path: Path) -> None:
    """The dump runs in a forked child: fork_dump returns before it ends (here the child
    waits for a file the parent creates only afterwards), and it sees the state as it
    was at the fork, not the parent's later changes. The child writes the sections into
    the temporary file; the parent writes the header and renames it."""
    go = tmp_path / "go"
    state = {"ratings": list(range(1000))}
    sf = statefile.StateFile(tmp_path / "s.bin", "scores", "c1")

    def dump() -> list[object]:
        while not go.exists():  # in the child: wait until the parent has moved on
            pass
        return [state, Ledger(head=9)]

    forked = statefile.fork_dump(sf, dump)
    assert gc.get_freeze_count() > 0  # the objects alive at the fork: out of the collector's way
    state["ratings"] = []  # the parent changes its state after the fork
    go.touch()
    sections = forked.collect()
    assert gc.get_freeze_count() == 0  # back with the child done
    size = sf.finish(forked.tmp, 9, "cd" * 32, sections)
    assert size == (tmp_path / "s.bin").stat().st_size
    h = sf.header()
    assert h is not None and (h.head, h.head_id) == (9, "cd" * 32)
    assert sf.section(h, 0) == {"ratings": list(range(1000))}
    assert sf.section(h, 1) == Ledger(head=9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["go", "s.bin"]  # no temporary file left


def test_fork_dump_writes_large_arrays_whole(tmp_path: Path) -> None:
    """A NumPy array over the pickler's 64 KB frame reaches the file as a buffer of its own
    (pickle.PickleBuffer): counted and hashed in bytes, read back equal."""
    import numpy as np

    sf = statefile.StateFile(tmp_path / "s.bin", "scores", "c1")
    big = {"fit": np.arange(100_000, dtype=np.float64), "ids": [str(i) for i in range(1000)]}
    forked = statefile.fork_dump(sf, lambda: [big, Ledger(head=3)])
    sf.finish(forked.tmp, 3, "ef" * 32, forked.collect())
    h = sf.header()
    assert h is not None
    got = sf.section(h, 0)
    assert np.array_equal(got["fit"], big["fit"]) and got["ids"] == big["ids"]


def test_fork_dump_failure_is_an_error_not_a_partial_file(tmp_path: Path) -> None:
    sf = _write(tmp_path / "s.bin")
    before = (tmp_path / "s.bin").read_bytes()

    def broken() -> list[object]:
        raise RuntimeError("cannot pickle")

    def unpicklable() -> list[object]:
        return [{"ok": 1}, lambda: None]  # the first section is written, the second fails

    for dump in (broken, unpicklable):
        with pytest.raises(RuntimeError, match="state dump in child process"):
            statefile.fork_dump(sf, dump).collect()
    assert gc.get_freeze_count() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.bin"]  # the previous file, untouched
    assert (tmp_path / "s.bin").read_bytes() == before

def pickle_loads(data: bytes) -> object:
    import pickle

    return pickle.loads(data)


def test_sections_are_read_frame_by_frame_with_every_pickle_protocol() -> None:
    """The unpickler reads a section through Python calls (forum.statefile._Frames), so a large
    section loaded in a thread lets the event loop run; every protocol reads the same objects."""
    import pickle

    from forum.scores.ledger import RatingEntry
    from forum.statefile import _Frames

    obj = {"a": [1, 2.5, "line\nbreak"], "entries": [RatingEntry(1, 2, "e", 0.5, (("c", 1.0),))] * 3, "big": b"x" * 200_000}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(obj, protocol=protocol)
        assert pickle.Unpickler(_Frames(data)).load() == obj
    loaded = pickle.Unpickler(_Frames(pickle.dumps(obj, protocol=5))).load()
    assert loaded["entries"][0] is loaded["entries"][2]  # shared entries stay shared (history and current)
