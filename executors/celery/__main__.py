"""``python -m executors.celery worker ...``: the worker CLI without the execconsole entry point."""

from executors.celery.cli import app

app(prog_name="execconsole celery")
