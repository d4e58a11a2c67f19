"""A store that every worker process of one machine shares: LMDB (a memory-mapped
B-tree; readers take no lock), with each process's decoded copies in front.

Theory of operation. A record is ``stamp (8 bytes) | expires (f64) | variants`` in the
core's own format. ``stamp`` is unique per put (a counter kept in the same write
transaction, so across processes too). A get opens a read transaction, reads the
record without copying it (``buffers=True``) and compares its stamp with the one this
process decoded last: the same stamp returns the same ``Entry`` objects, so the hit
path's pre-serialised heads (``Entry.wire_heads``) and encoded copies live on; another
stamp decodes once. Deletes and purges remove the record, which every process sees at
its next get: a purge has reached every worker when it returns.

Bounds: ``max_bytes`` of records, oldest put first out (FIFO, from an index by stamp:
LMDB keeps no access order, and recording one would make every hit a write). The local
copies are bounded by ``max_bytes`` too, least recently used first out.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable

import lmdb
from cachetools import LRUCache

from edgecache.core.model import decode_variants, encode_variants
from edgecache.errors import StorageError
from edgecache.storage.base import Variants, purge_matches

_HEAD = struct.Struct(">Qd")
"""A record's stamp and expiry time."""
_STAMP, _BYTES = b"stamp", b"bytes"
"""Meta records: the last stamp given, and the bytes the records hold."""
_Memo = tuple[bytes, Variants]
_CLAIM = struct.Struct(">id")
"""A claim's holder (pid) and the time it lapses."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedStore:
    """LMDB at ``directory`` (created when missing), shared by every process opening it."""

    keeps_tuples = True
    """``get`` returns the very tuple it returned before while the record is unchanged
    (so the engine may replay a hit from it)."""

    def __init__(self, directory: str, max_bytes: int, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._max_bytes = max_bytes
        try:
            # The map is address space, not memory: room for the records, the B-tree
            # and the pages freed but not yet reusable while readers hold old ones.
            self._env = lmdb.open(
                directory, map_size=max(4 * max_bytes, 64 * 1024**2), max_dbs=4, sync=False
            )
            self._env.reader_check()  # slots left by processes that died reading
            self._records = self._env.open_db(b"records")
            self._order = self._env.open_db(b"order")
            self._meta = self._env.open_db(b"meta")
            self._claims = self._env.open_db(b"claims")
        except lmdb.Error as exc:
            raise StorageError(f"cannot open shared store at {directory!r}: {exc}") from exc
        self._lock = threading.Lock()  # the memo: cachetools is not thread-safe
        self._memo: LRUCache[str, _Memo] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda memo: sum(e.nbytes for e in memo[1]) + 64
        )

    def get(self, key: str) -> Variants | None:
        try:
            with self._env.begin(db=self._records, buffers=True) as txn:
                raw = txn.get(key.encode())
                if raw is None:
                    return None
                _, expires = _HEAD.unpack_from(raw)
                if expires <= self._clock():
                    return None
                mark = raw[:8].tobytes()
                with self._lock:
                    memo = self._memo.get(key)
                if memo is not None and memo[0] == mark:
                    return memo[1]
                variants = decode_variants(raw[_HEAD.size :].tobytes())
        except lmdb.Error as exc:
            raise StorageError(f"shared store get failed: {exc}") from exc
        except (ValueError, KeyError, IndexError) as exc:
            raise StorageError(f"damaged shared record for {key!r}: {exc}") from exc
        self._remember(key, mark, variants)
        return variants

    def _remember(self, key: str, mark: bytes, variants: Variants) -> None:
        with self._lock:
            try:
                self._memo[key] = (mark, variants)
            except ValueError:  # larger than the whole memo
                self._memo.pop(key, None)

    def put(self, key: str, variants: Variants, ttl: float) -> None:
        payload = encode_variants(variants)
        size = len(payload) + _HEAD.size + len(key)
        if size > self._max_bytes:
            self.delete(key)
            return
        try:
            with self._env.begin(write=True) as txn:
                stamp = int.from_bytes(txn.get(_STAMP, b"", db=self._meta), "big") + 1
                txn.put(_STAMP, stamp.to_bytes(8, "big"), db=self._meta)
                held = self._drop(txn, key.encode(), self._held(txn))
                held = self._make_room(txn, held, size)
                record = _HEAD.pack(stamp, self._clock() + ttl) + payload
                txn.put(key.encode(), record, db=self._records)
                txn.put(stamp.to_bytes(8, "big"), key.encode(), db=self._order)
                txn.put(_BYTES, (held + size).to_bytes(8, "big"), db=self._meta)
        except lmdb.Error as exc:
            raise StorageError(f"shared store put failed: {exc}") from exc
        self._remember(key, stamp.to_bytes(8, "big"), variants)

    def _held(self, txn: lmdb.Transaction) -> int:
        return int.from_bytes(txn.get(_BYTES, b"", db=self._meta), "big")

    def _drop(self, txn: lmdb.Transaction, key: bytes, held: int) -> int:
        """Remove ``key``'s record inside ``txn``; the bytes held afterwards."""
        old = txn.get(key, db=self._records)
        if old is not None:
            txn.delete(old[:8], db=self._order)
            txn.delete(key, db=self._records)
            held -= len(old) + len(key)
        return max(held, 0)

    def _make_room(self, txn: lmdb.Transaction, held: int, size: int) -> int:
        """Drop the oldest records until ``size`` more bytes fit; the bytes held then."""
        if held + size <= self._max_bytes:
            return held
        cursor = txn.cursor(db=self._order)
        while held + size > self._max_bytes and cursor.first():
            stamp, key = (bytes(part) for part in cursor.item())
            txn.delete(stamp, db=self._order)
            held = self._drop(txn, key, held)
        return held

    def delete(self, key: str) -> None:
        try:
            with self._env.begin(write=True) as txn:
                held = self._drop(txn, key.encode(), self._held(txn))
                txn.put(_BYTES, held.to_bytes(8, "big"), db=self._meta)
        except lmdb.Error as exc:
            raise StorageError(f"shared store delete failed: {exc}") from exc
        with self._lock:
            self._memo.pop(key, None)

    def purge(self, prefix: str | None = None, tag: str | None = None) -> int:
        count = 0
        try:
            with self._env.begin(write=True) as txn:
                doomed = []
                for raw_key, record in txn.cursor(db=self._records):
                    key = raw_key.decode()
                    if prefix is not None and key.startswith(prefix):
                        doomed.append(raw_key)
                    elif tag is not None:
                        variants = decode_variants(record[_HEAD.size :])
                        if purge_matches(key, variants, None, tag):
                            doomed.append(raw_key)
                held = self._held(txn)
                for raw_key in doomed:
                    held = self._drop(txn, raw_key, held)
                    count += 1
                if doomed:
                    txn.put(_BYTES, held.to_bytes(8, "big"), db=self._meta)
        except lmdb.Error as exc:
            raise StorageError(f"shared store purge failed: {exc}") from exc
        return count

    # -- claims: one fetch per cold key on the machine (``shared_coalesce``) ----------

    def _holder(self, txn: lmdb.Transaction, key: bytes, now: float) -> int:
        """The live pid holding ``key``'s claim, or 0."""
        raw = txn.get(key, db=self._claims)
        if raw is None:
            return 0
        pid, until = _CLAIM.unpack(bytes(raw))
        return pid if until > now and _alive(pid) else 0

    def claim(self, key: str, until: float, now: float) -> bool:
        try:
            with self._env.begin(write=True) as txn:
                holder = self._holder(txn, key.encode(), now)
                if holder and holder != os.getpid():
                    return False
                txn.put(key.encode(), _CLAIM.pack(os.getpid(), until), db=self._claims)
                return True
        except lmdb.Error:
            return True  # the store is failing: fetch alone rather than wait on nothing

    def claimed(self, key: str, now: float) -> bool:
        try:
            with self._env.begin(buffers=True) as txn:
                holder = self._holder(txn, key.encode(), now)
        except lmdb.Error:
            return False
        return bool(holder) and holder != os.getpid()

    def release(self, key: str) -> None:
        try:
            with self._env.begin(write=True) as txn:
                raw = txn.get(key.encode(), db=self._claims)
                if raw is not None and _CLAIM.unpack(raw)[0] == os.getpid():
                    txn.delete(key.encode(), db=self._claims)
        except lmdb.Error:
            pass  # it lapses at its time

    def clear(self) -> None:
        with self._env.begin(write=True) as txn:
            for db in (self._records, self._order, self._meta, self._claims):
                txn.drop(db, delete=False)
        with self._lock:
            self._memo.clear()

    def close(self) -> None:
        self._env.close()

    def __len__(self) -> int:
        with self._env.begin(db=self._records) as txn:
            return int(txn.stat(self._records)["entries"])

    @property
    def nbytes(self) -> int:
        with self._env.begin(db=self._meta) as txn:
            return int.from_bytes(txn.get(_BYTES, b""), "big")
