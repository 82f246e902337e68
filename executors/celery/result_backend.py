"""QuietRedisBackend: Celery's Redis result backend without a subscription per sent task.

Celery's Redis backend subscribes to a pub/sub channel for every task a
client sends, so that ``AsyncResult.get()`` can wait for it. The executor
never waits on single results; it reads all of them with one MGET per
heartbeat. Subscribing anyway costs a command per send and leaves a
connection that Redis fills with every result published. Only the
executor's app uses this class; workers use Celery's own.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend


class QuietRedisBackend(RedisBackend):
    """RedisBackend whose senders never subscribe to result channels."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Do nothing: results are fetched in bulk, not waited for one by one."""

    def remove_pending_result(self, result: Any) -> Any:
        """Do nothing: nothing was subscribed (each sent task's AsyncResult calls this when freed)."""
        return result
