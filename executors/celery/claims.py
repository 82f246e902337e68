"""RedisClaims: claims and leases in Redis, so that a try starts at most once across machines.

The cross-machine twin of ``executors.claims.ClaimBook``. Celery may deliver a
message more than once: Redis hands an unacknowledged message to another
worker after the visibility timeout, a restarted Redis may hold a copy, and the
executor re-sends what it cannot prove was received. So the Celery task id
(the try's token) is not enough; before starting the process a worker runs
one atomic script that creates ``claim:<token>`` only if it does not exist.
A second delivery finds the claim and does nothing.

While the try runs, its worker renews a short ``lease:<token>``. The claim
outlives the worker (it guards against redelivery for days); the lease dies
with it, which is how the executor tells a running try from a lost one.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from executors.celery.keys import RedisKeys
from executors.celery.pinned import LuaScript, PinnedConnection
from executors.claims import CLAIMED, FINISHED, REVOKED, STARTED

__all__ = ["CLAIMED", "FINISHED", "REVOKED", "STARTED", "RedisClaims"]

# KEYS: claim, lease. ARGV: expected current claim ('' = must not exist),
# new claim, claim ttl (s), lease ttl (ms; '0' deletes the lease),
# '1' when a vanished claim may be written again (Redis lost its data).
# A claim that is already the new record is this writer's own earlier write
# whose reply was lost (a timeout, then the same call again): it succeeds.
# Records name the pool pid and a microsecond timestamp, so no other writer's
# record is ever equal to it.
_GUARDED_WRITE = """
local current = redis.call('GET', KEYS[1])
if current == false then
  if ARGV[1] ~= '' and ARGV[5] ~= '1' then return 0 end
elseif current ~= ARGV[1] and current ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
if ARGV[4] == '0' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
end
return 1
"""


class RedisClaims:
    """Claim, renew and revoke tokens in one Redis, one round trip each (a try's end: outcome.py).

    With ``pinned``, ``claim`` runs on that connection, so only the thread
    that owns it may call ``claim``; ``renew`` (the lease keeper's thread)
    always goes through ``client``.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: RedisKeys,
        *,
        claim_ttl: int,
        lease_seconds: float,
        pinned: PinnedConnection | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.claim_ttl = claim_ttl
        self.lease_ms = max(int(lease_seconds * 1000), 1)
        self._pinned = pinned
        self._script = LuaScript(_GUARDED_WRITE)
        self._write = client.register_script(_GUARDED_WRITE)

    def _guarded(
        self,
        token: str,
        expected: str,
        new: str,
        *,
        lease: bool,
        recreate: bool,
        pinned: bool = False,
    ) -> bool:
        args: list[str | int] = [
            expected,
            new,
            self.claim_ttl,
            self.lease_ms if lease else 0,
            int(recreate),
        ]
        keys = [self.keys.claim(token), self.keys.lease(token)]
        if pinned and self._pinned is not None:
            return bool(self._pinned.run(self._script, keys, args))
        # EVALSHA through a Script object: the script is loaded only after a
        # NOSCRIPT. (Queued on a pipeline, redis-py would add a SCRIPT EXISTS.)
        return bool(self._write(keys=keys, args=args))

    def claim(self, token: str, **details: Any) -> str | None:
        """Claim a token before starting its try; the record written, or None if it was taken.

        Calling again with the same details after an error is safe: finding
        its own record, the call succeeds (see ``_GUARDED_WRITE``).
        """
        record = encode_record(CLAIMED, details)
        written = self._guarded(token, "", record, lease=True, recreate=False, pinned=True)
        return record if written else None

    def renew(self, token: str, current: str, new: str | None = None) -> bool:
        """Keep the lease (and optionally replace the record); False if the claim is someone else's.

        A claim that vanished (Redis restarted without its data) is written
        again, so that a copy of the message the executor re-sends is refused.
        """
        return self._guarded(token, current, new or current, lease=True, recreate=True)

    def finish(self, token: str, current: str, **details: Any) -> bool:
        """Record the end of a try whose claim is still ``current``; drops its lease.

        For a try whose worker could not store its outcome (its pool process
        died): False if the claim changed meanwhile (its own end was stored).
        """
        record = encode_record(FINISHED, details)
        return self._guarded(token, current, record, lease=False, recreate=False)

    def revoke(self, token: str, why: str) -> bool:
        """Make sure a token never starts; False if a worker claimed it first."""
        record = encode_record(REVOKED, {"why": why})
        return bool(self.client.set(self.keys.claim(token), record, nx=True, ex=self.claim_ttl))


def encode_record(state: str, details: dict[str, Any]) -> str:
    return json.dumps({"state": state, **details}, sort_keys=True)


def decode_record(raw: bytes | str | None) -> dict[str, Any] | None:
    """A claim record as a dict; None when there is no claim."""
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return {"state": CLAIMED}
    return record if isinstance(record, dict) else {"state": CLAIMED}
