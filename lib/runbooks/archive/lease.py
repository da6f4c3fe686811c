"""Environment locks that hold across machines: a leased object in the archive store.

The lock of environment ``E`` is the object ``locks/E.json`` of the archive store (see
:mod:`runbooks.archive.objects`), holding ``state`` (``held`` or ``released``), ``run_id``, ``actor``,
``host``, ``pid``, ``since`` and ``expires_at``. Only conditional writes touch it:

- acquire: ``create_if_absent`` when there is no lock object yet; otherwise, when the current one is
  ``released`` or its lease has expired, ``replace_if_match`` on the etag just read (two contenders cannot
  both win; the loser re-reads and is refused, naming the winner). A live lease refuses at once with
  :class:`LeaseHeld` (holder, host, run id, expiry);
- the holder renews the lease (``replace_if_match`` on its own etag) every third of the lease from a
  background thread; a renewal that loses (someone took over an expired lease) marks the lock ``lost``;
- release: ``replace_if_match`` with a ``released`` body (nothing is ever deleted: the store is write-once
  for history and object-locked).

Expiry is judged with the reader's clock: keep the lease (default :data:`LEASE_SECONDS`) far above the
clock skew between machines.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from runbooks.archive.lock import LockHeld
from runbooks.archive.objects import Objects, Stored, StoreUnavailable

LEASE_SECONDS = 120.0
LEASE_ENV = "RUNBOOKS_LOCK_LEASE_SECONDS"
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def lease_seconds() -> float:
    raw = os.environ.get(LEASE_ENV)
    try:
        return float(raw) if raw else LEASE_SECONDS
    except ValueError:
        raise ValueError(f"{LEASE_ENV}={raw!r}: not a number of seconds; unset it or give e.g. 120") from None


class LeaseHeld(LockHeld):
    """Another run holds the environment's lease (on this machine or another)."""

    def __init__(self, environment: str, holder: dict[str, Any], where: str) -> None:
        self.environment = environment
        self.holder = holder
        self.where = where
        h = holder
        RuntimeError.__init__(
            self,
            f"environment {environment!r} is locked by run {h.get('run_id', '?')} (actor {h.get('actor', '?')}, "
            f"host {h.get('host', '?')}, pid {h.get('pid', '?')}, since {h.get('since', '?')}; lease expires "
            f"{h.get('expires_at', '?')}). Wait for it to finish: the lock is free when that run releases it or "
            f"its lease expires without renewal ({where}).",
        )


def lock_key(environment: str) -> str:
    return f"locks/{environment}.json"


def _parse(stored: Stored) -> dict[str, Any]:
    try:
        data = json.loads(stored.data)
    except ValueError:
        return {"state": "held", "run_id": "?", "note": "unreadable lock object", "expires_at": None}
    return data if isinstance(data, dict) else {"state": "held", "run_id": "?", "note": "malformed lock object"}


def is_free(holder: dict[str, Any], now: datetime) -> bool:
    """Released, or a lease that expired (an unreadable expiry is never taken for expired)."""
    if holder.get("state") == "released":
        return True
    try:
        expires = datetime.fromisoformat(str(holder.get("expires_at")))
    except ValueError:
        return False
    return expires.astimezone(UTC) <= now


@dataclass
class LeasedLock:
    """A held lease; :meth:`release` it (also a context manager). Renewed in the background while held."""

    objects: Objects
    environment: str
    holder: dict[str, Any]
    etag: str
    acquired_at: datetime
    lease: float
    took_over_from: dict[str, Any] | None = None
    clock: Clock = _now
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return lock_key(self.environment)

    def renew(self) -> bool:
        """Extend the lease by its length from now; False (and ``lost``) if someone else took it."""
        with self._mutex:
            if self.lost or self._stop.is_set():
                return False
            body = {**self.holder, "expires_at": (self.clock() + timedelta(seconds=self.lease)).isoformat()}
            etag = self.objects.replace_if_match(self.key, _dump(body), self.etag)
            if etag is None:
                self.lost = True
                return False
            self.holder, self.etag = body, etag
            return True

    def start_renewing(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.lease / 3):
                try:
                    if not self.renew():
                        return
                except Exception:  # the store is away for a moment: try again at the next tick
                    continue

        self._thread = threading.Thread(target=loop, name=f"lease-{self.environment}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Mark the lock released if it is still ours (idempotent)."""
        with self._mutex:
            if self._stop.is_set():
                return
            self._stop.set()
            if not self.lost:
                body = {**self.holder, "state": "released", "released_at": self.clock().isoformat()}
                # the store is away: the lease is no longer renewed and expires by itself
                with contextlib.suppress(StoreUnavailable):
                    self.objects.replace_if_match(self.key, _dump(body), self.etag)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> LeasedLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, indent=1).encode()


def read_holder(objects: Objects, environment: str) -> dict[str, Any] | None:
    stored = objects.get(lock_key(environment))
    return _parse(stored) if stored is not None else None


def acquire(
    objects: Objects,
    environment: str,
    *,
    run_id: str,
    actor: str,
    where: str,
    lease: float | None = None,
    clock: Clock = _now,
    renew: bool = True,
) -> LeasedLock:
    """Take ``environment``'s lease for ``run_id`` or raise :class:`LeaseHeld` at once (see the module doc)."""
    lease = lease_seconds() if lease is None else lease
    key = lock_key(environment)
    for _attempt in range(3):
        now = clock()
        holder = {
            "state": "held",
            "environment": environment,
            "run_id": run_id,
            "actor": actor,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": now.isoformat(timespec="seconds"),
            "expires_at": (now + timedelta(seconds=lease)).isoformat(),
        }
        current = objects.get(key)
        took_over: dict[str, Any] | None = None
        if current is None:
            etag = objects.create_if_absent(key, _dump(holder))
        else:
            previous = _parse(current)
            if not is_free(previous, now):
                raise LeaseHeld(environment, previous, where)
            took_over = previous if previous.get("state") != "released" else None
            etag = objects.replace_if_match(key, _dump(holder), current.etag)
        if etag is None:
            continue  # lost the race: re-read, and be refused by the winner's live lease
        held = LeasedLock(objects, environment, holder, etag, now, lease, took_over, clock)
        if renew:
            held.start_renewing()
        return held
    final = objects.get(key)
    raise LeaseHeld(environment, _parse(final) if final else {"run_id": "?"}, where)
