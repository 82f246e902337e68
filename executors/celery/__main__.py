"""``python -m executors.celery [--home PATH] worker ...``: the worker CLI without the execconsole entry point."""

from executors.celery.cli import standalone

standalone(prog_name="python -m executors.celery")
