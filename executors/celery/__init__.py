"""The Celery executor (optional extra ``execconsole[celery]``): tries run on Celery workers through Redis.

Modules, one noun each:

    settings.py        CelerySettings (options, then EXECCONSOLE__CELERY__* variables)
    app.py             make_app(): the Celery app for clients and workers
    keys.py            names of execconsole's own Redis keys
    claims.py          RedisClaims: claim/lease script, so a try starts at most once
    lease.py           LeaseKeeper: a worker thread renewing the running try's lease
    log_tail.py        LogTails: the end of each log, kept in Redis
    task.py            the Celery task: claim, supervise, report
    outcome.py         OutcomeWriter: a try's end (claim, lease, log tail, result) in one script call
    pinned.py          PinnedConnection: the task thread's own connection for those two scripts
    transport.py       kombu's Redis transport keeping one client per channel (workers' main processes)
    notices.py         FinishNotices: workers' finish notices as the executor's wait handle
    task_meta.py       read_meta(): a result-backend value as (state, report)
    result_backend.py  QuietRedisBackend: sending without subscribing to results
    worker_hooks.py    the worker's status reply and orphan cleanup
    cluster.py         ClusterInspector: workers and queues, polled off-thread
    executor.py        CeleryExecutor
    cli.py             ``execconsole celery worker|inspect|stop``
    worker_app.py      a module-level app for ``celery -A executors.celery.worker_app``
    panel.py           the console's Celery tab (Textual; imported lazily)

Nothing here is imported by ``executors`` itself: importing this package costs
nothing until the executor, the CLI group or the panel is used.
"""
