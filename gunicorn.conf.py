"""Gunicorn settings for the pastebin web process.

Run: gunicorn -c gunicorn.conf.py 'service.app:create_app()'
Each worker process builds its own app, and so its own connection pool,
after the fork; worker_exit closes it.
"""

import os
import tempfile

from service.config import Config
from service.logs import configure_logging

_config = Config.from_env()  # fail fast, with the reason, on a bad setting
configure_logging(_config)

bind = os.environ.get("BIND", f"127.0.0.1:{_config.port}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 5
timeout = 30
graceful_timeout = 20
# Request-line and header limits: small, because nothing legitimate needs more.
limit_request_line = 4096
limit_request_fields = 50
limit_request_field_size = 8190
accesslog = None  # the app writes one structured line per request
errorlog = "-"
loglevel = _config.log_level.lower()
# gunicorn's own messages go through the structlog pipeline set up above (the
# root logger); its access log is off because the app writes its own.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {
        "gunicorn.error": {"handlers": [], "propagate": True},
        "gunicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
    },
}
proc_name = "pastebin-web"

# Every worker process writes its metrics here and /metrics aggregates them.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pastebin-metrics-")


def post_fork(server, worker):
    configure_logging(_config)


def worker_exit(server, worker):
    close = getattr(worker.wsgi, "close", None)
    if callable(close):
        close()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
