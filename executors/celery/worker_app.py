"""A module-level app for Celery's own tools: ``celery -A executors.celery.worker_app worker|inspect|events``.

``execconsole celery worker`` is the usual way to start a worker; this module
lets Celery's CLI (and tools built on it) load the same app, configured from
``EXECCONSOLE__CELERY__*`` environment variables.
"""

from executors.celery.app import make_app
from executors.celery.settings import CelerySettings

app = make_app(CelerySettings.load(), role="worker")
