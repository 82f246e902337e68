"""RedisKeys: the names of the keys execconsole keeps beside Celery's own.

``claim:<token>``  who started a try (or that it must never start); lives for days.
``lease:<token>``  renewed every few seconds while the try runs; its expiry means the worker is gone.
``log:<task key>`` the end of the try's log, so a console on another machine can show it.
``epoch``          set once per Redis data set; when it vanishes, Redis lost its data.
``finished``       a pub/sub channel (not a key): a worker publishes a try's token on it
                   once the try's outcome is stored, so executors wake up instead of polling.
``queues``         a set of the queues engines have sent tries to, kept on the *broker's*
                   Redis beside the queues themselves: the console's Celery tab runs in
                   another process than the engine and learns those queues from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from executors.task_key import TaskKey

CELERY_META_PREFIX = "celery-task-meta-"


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str = "execconsole"

    def claim(self, token: str) -> str:
        return f"{self.prefix}:claim:{token}"

    def lease(self, token: str) -> str:
        return f"{self.prefix}:lease:{token}"

    def log(self, key: TaskKey) -> str:
        return f"{self.prefix}:log:{key}"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}:epoch"

    @property
    def queues(self) -> str:
        return f"{self.prefix}:queues"

    @property
    def finished_channel(self) -> str:
        return f"{self.prefix}:finished"

    @staticmethod
    def meta(token: str) -> str:
        """Celery's result key for a task id (the Redis backend's naming)."""
        return CELERY_META_PREFIX + token
