"""OutcomeWriter: the end of a try, stored in Redis in one round trip.

When a try's process has ended, its worker has four things to write: the
claim's final record (and the lease dropped), the end of the log, and the
result the executor reads (Celery's ``celery-task-meta-<token>`` value, in
Celery's own JSON layout, so Celery's tools read it too). Written one by one
that was four round trips and a ``SCRIPT EXISTS`` per try, and the largest
part of a worker's cost per try. Here they go in one Lua script, atomically:
no reader ever sees the claim finished without the result, or the reverse.

The task is declared ``ignore_result`` so that Celery does not store the
result a second time; failures (exceptions, revokes, lost pool processes)
are still stored by Celery (``store_errors_even_if_ignored``). As in Celery's
own backend, a result already stored as SUCCESS is never overwritten.
Last, the token is published on the ``finished`` channel, which wakes the
executors that listen (notices.py); it is a hint, never the only way a
state is learnt.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import redis

from executors.celery.claims import FINISHED, encode_record
from executors.celery.keys import RedisKeys
from executors.celery.log_tail import read_tail
from executors.celery.pinned import LuaScript, PinnedConnection
from executors.task_key import TaskKey
from executors.workload import TaskReport

# KEYS: claim, lease, log, meta.
# ARGV: 1 expected claim ('' = leave the claim and lease alone), 2 final claim,
#       3 claim ttl (s), 4 log size, 5 log data, 6 log path, 7 host, 8 log ttl (s),
#       9 result meta, 10 result ttl (s), 11 the "finished" channel, 12 the token.
# Returns 1 if the claim was finished, 0 if it was someone else's (or left alone).
_STORE_OUTCOME = """
local finished = 0
if ARGV[1] ~= '' then
  local current = redis.call('GET', KEYS[1])
  if current == false or current == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    redis.call('DEL', KEYS[2])
    finished = 1
  end
end
redis.call('HSET', KEYS[3], 'size', ARGV[4], 'data', ARGV[5], 'path', ARGV[6],
           'host', ARGV[7], 'final', '1')
redis.call('EXPIRE', KEYS[3], ARGV[8])
local stored = redis.call('GET', KEYS[4])
if stored then
  local ok, meta = pcall(cjson.decode, stored)
  if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then
    return finished
  end
end
redis.call('SET', KEYS[4], ARGV[9], 'EX', ARGV[10])
redis.call('PUBLISH', KEYS[4], ARGV[9])
redis.call('PUBLISH', ARGV[11], ARGV[12])
return finished
"""


def success_meta(token: str, report: TaskReport) -> str:
    """Celery's result-backend value for a successful task whose result is ``report``.

    The report keeps only the fields that are set (``TaskReport.from_json``
    fills in the rest), which keeps the value and its decoding small.
    """
    result = {name: value for name, value in report.to_json().items() if value is not None}
    return json.dumps(
        {
            "status": "SUCCESS",
            "result": result,
            "traceback": None,
            "children": [],
            "date_done": dt.datetime.now(dt.UTC).isoformat(),
            "task_id": token,
        }
    )


class OutcomeWriter:
    """Stores how a try ended: claim, lease, log tail and result, in one script call.

    With ``pinned`` the call goes on that connection (so only its thread may
    call ``store``), else through ``client``.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: RedisKeys,
        *,
        claim_ttl: int,
        log_tail_bytes: int,
        log_ttl: int,
        result_ttl: int,
        pinned: PinnedConnection | None = None,
    ) -> None:
        self.keys = keys
        self._pinned = pinned
        self._lua = LuaScript(_STORE_OUTCOME)
        self.claim_ttl = claim_ttl
        self.log_tail_bytes = log_tail_bytes
        self.log_ttl = log_ttl
        self.result_ttl = result_ttl
        # A Script object sends EVALSHA and loads the script only on NOSCRIPT
        # (a restarted Redis), never a SCRIPT EXISTS per call.
        self._script = client.register_script(_STORE_OUTCOME)

    def store(
        self,
        token: str,
        key: TaskKey,
        *,
        claim_record: str | None,
        report: TaskReport,
        log_path: str,
        host: str,
        task_id: str | None = None,
    ) -> bool:
        """Write the outcome; True if this worker's claim was finished.

        ``task_id`` is the Celery task id the result is stored under (the
        executor sends every try with its token as the task id).

        ``claim_record`` is the claim as this worker last wrote it (None: the
        claim was taken over, so it and its lease are left alone). A claim that
        vanished (Redis lost its data) is written again, so a late copy of the
        message is still refused.

        Raises:
            redis.RedisError: Redis could not be reached; nothing or all was written.
        """
        size, data = read_tail(log_path, self.log_tail_bytes)
        final_claim = encode_record(FINISHED, report.to_json()) if claim_record else ""
        args: list[Any] = [
            claim_record or "",
            final_claim,
            self.claim_ttl,
            size,
            data,
            log_path,
            host,
            self.log_ttl,
            success_meta(task_id or token, report),
            self.result_ttl,
            self.keys.finished_channel,
            token,
        ]
        names = [
            self.keys.claim(token),
            self.keys.lease(token),
            self.keys.log(key),
            self.keys.meta(task_id or token),
        ]
        if self._pinned is not None:
            return bool(self._pinned.run(self._lua, names, args))
        return bool(self._script(keys=names, args=args))
