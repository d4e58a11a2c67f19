"""One contract suite over every store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgecache.core.model import Entry
from edgecache.errors import StorageError
from edgecache.storage import DiskStore, MemoryStore, Store
from tests.helpers import entry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "disk", "shared", "redis", "tiered"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "memory":
        s = MemoryStore(10 * 1024**2, FakeClock())
    elif request.param == "disk":
        s = DiskStore(str(tmp_path / "cache"), 10 * 1024**2)
    elif request.param == "shared":
        from edgecache.storage.shared import SharedStore

        s = SharedStore(str(tmp_path / "shared"), 10 * 1024**2, FakeClock())
    else:
        from edgecache.storage.redis import RedisStore
        from edgecache.storage.tiered import TieredStore

        url = request.getfixturevalue("redis_url")
        remote = RedisStore(url, prefix=f"test-{uuid.uuid4().hex[:8]}")
        s = (
            remote
            if request.param == "redis"
            else _Flushing(TieredStore(MemoryStore(10 * 1024**2, FakeClock()), remote))
        )
    yield s
    s.close()


class _Flushing:
    """A tiered store whose writes are waited for, so the contract reads them back."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("put", "delete", "clear", "purge"):

            def flushed(*args: Any, **kwargs: Any) -> Any:
                result = attr(*args, **kwargs)
                self.inner.flush()
                self.inner.local.clear()  # read back from Redis, not the local tier
                return result

            return flushed
        return attr

    def __len__(self) -> int:
        return len(self.inner.remote)


def test_put_get_delete(store: Store) -> None:
    e = entry(("Cache-Control", "max-age=60"), body=b"x" * 1000)
    assert store.get("k") is None
    store.put("k", (e,), 60)
    assert store.get("k") == (e,)
    assert len(store) == 1
    store.delete("k")
    assert store.get("k") is None
    store.delete("missing")  # not an error


def test_variants_round_trip(store: Store) -> None:
    variants: tuple[Entry, ...] = (entry(body=b"a"), entry(body=b"\x00" * 70000))
    store.put("k", variants, 60)
    assert store.get("k") == variants


def test_clear(store: Store) -> None:
    store.put("a", (entry(),), 60)
    store.put("b", (entry(),), 60)
    store.clear()
    assert store.get("a") is None and len(store) == 0


def test_purge_by_prefix_and_tag(store: Store) -> None:
    tagged = entry(("Cache-Control", "max-age=60"), ("Surrogate-Key", "red blue"))
    store.put("http://h/a/1", (tagged,), 60)
    store.put("http://h/a/2", (entry(),), 60)
    store.put("http://h/b/1", (entry(),), 60)
    assert store.purge(tag="blue") == 1
    assert store.get("http://h/a/1") is None and store.get("http://h/a/2") is not None
    assert store.purge(prefix="http://h/a/") == 1
    assert store.get("http://h/a/2") is None and store.get("http://h/b/1") is not None


def test_memory_store_is_bounded_by_bytes_not_entries() -> None:
    clock = FakeClock()
    s = MemoryStore(100_000, clock)
    big = entry(body=b"x" * 30_000)
    for i in range(10):
        s.put(f"k{i}", (big,), 60)
    assert len(s) == 3  # 3 x ~30 KB fit in 100 KB; the least recently used went
    assert s.get("k9") is not None and s.get("k0") is None
    assert s.nbytes <= 100_000
    s.put("huge", (entry(body=b"x" * 200_000),), 60)
    assert s.get("huge") is None  # larger than the whole store: refused, not raised


def test_memory_store_expires_each_key_at_its_own_time() -> None:
    clock = FakeClock()
    s = MemoryStore(1_000_000, clock)
    s.put("short", (entry(),), 10)
    s.put("long", (entry(),), 100)
    clock.now += 50
    assert s.get("short") is None and s.get("long") is not None


def test_disk_store_survives_restart(tmp_path: Path) -> None:
    e = entry(("Cache-Control", "max-age=60"), body=b"persisted")
    first = DiskStore(str(tmp_path / "c"), 10**7)
    first.put("k", (e,), 60)
    first.close()
    second = DiskStore(str(tmp_path / "c"), 10**7)
    assert second.get("k") == (e,)
    second.close()


def test_disk_store_damaged_record_is_a_storage_error_then_a_miss(tmp_path: Path) -> None:
    s = DiskStore(str(tmp_path / "c"), 10**7)
    s._cache.set("k", b"\x00\x01garbage")
    with pytest.raises(StorageError):
        s.get("k")
    assert s.get("k") is None
    s.close()


def test_disk_store_bad_directory_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot open disk store"):
        DiskStore(str(blocker / "sub"), 10**7)


def _shared(path: Path, max_bytes: int = 10 * 1024**2, clock: Any = None) -> Any:
    from edgecache.storage.shared import SharedStore

    return SharedStore(str(path), max_bytes, clock or FakeClock())


def test_shared_store_returns_the_same_entries_until_the_record_changes(tmp_path: Path) -> None:
    s = _shared(tmp_path / "shared")
    s.put("k", (entry(body=b"one"),), 60)
    first = s.get("k")
    assert first is not None and s.get("k") is first  # decoded once: wire heads live on
    s.put("k", (entry(body=b"two"),), 60)
    again = s.get("k")
    assert again is not None and again is not first and again[0].body == b"two"
    s.close()


def test_shared_store_is_bounded_by_bytes_oldest_put_first_out(tmp_path: Path) -> None:
    s = _shared(tmp_path / "shared", max_bytes=3000)
    for i in range(5):
        s.put(f"k{i}", (entry(body=b"x" * 800),), 60)
    assert s.nbytes <= 3000
    assert s.get("k0") is None and s.get("k4") is not None
    s.close()


def test_shared_store_expires_each_key_at_its_own_time(tmp_path: Path) -> None:
    clock = FakeClock()
    s = _shared(tmp_path / "shared", clock=clock)
    s.put("short", (entry(),), 10)
    s.put("long", (entry(),), 100)
    clock.now += 50
    assert s.get("short") is None and s.get("long") is not None
    s.close()


_OTHER_PROCESS = """
import sys
from edgecache.storage.shared import SharedStore
from tests.helpers import entry
s = SharedStore(sys.argv[1], 10 * 1024**2, lambda: 1000.0)
if sys.argv[2] == "put":
    s.put("k", (entry(body=b"from the other process"),), 60)
else:
    print(s.purge(prefix="k"))
"""


def test_shared_store_writes_and_purges_reach_the_other_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = str(tmp_path / "shared")
    s = _shared(path)

    def other(action: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", _OTHER_PROCESS, path, action],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    other("put")
    got = s.get("k")
    assert got is not None and got[0].body == b"from the other process"
    assert other("purge") == "1"
    assert s.get("k") is None
    s.close()


_CLAIMER = """
import sys, time
from edgecache.storage.shared import SharedStore
s = SharedStore(sys.argv[1], 10 * 1024**2, time.time)
print(s.claim("k", time.time() + 60, time.time()), flush=True)
if sys.argv[2] == "hold":
    time.sleep(30)
"""


def test_shared_claims_one_live_holder_on_the_machine(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    path = str(tmp_path / "shared")
    s = _shared(path, clock=time.time)
    command = [sys.executable, "-c", _CLAIMER, path, "hold"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
            assert s.claimed("k", time.time())
            assert not s.claim("k", time.time() + 60, time.time())
            s.release("k")  # not ours: stays
            assert s.claimed("k", time.time())
        finally:
            holder.kill()
    # The holder died with its claim: the next process may lead at once.
    assert not s.claimed("k", time.time())
    assert s.claim("k", time.time() + 60, time.time())
    assert not s.claimed("k", time.time())  # this process's own claim is no reason to wait
    s.release("k")
    s.close()
