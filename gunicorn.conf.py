"""Gunicorn settings for the pastebin web process.

Run: gunicorn -c gunicorn.conf.py 'service.app:create_app()'
Each worker process builds its own app, and so its own connection pool,
after the fork; worker_exit closes it.
"""

import os
import shutil
import tempfile

from gunicorn import util as gunicorn_util

from service import workers as workers_module
from service.config import Config
from service.logs import configure_logging
from service.problems import write_gunicorn_error

_config = Config.from_env()  # fail fast, with the reason, on a bad setting
configure_logging(_config)

bind = _config.bind or f"127.0.0.1:{_config.port}"
workers = _config.web_workers
worker_class = _config.web_worker_class
threads = _config.web_threads
worker_connections = _config.web_worker_connections
keepalive = 5
timeout = 30
graceful_timeout = 20
# Request-line and header limits: small, because nothing legitimate needs more.
limit_request_line = 4096
limit_request_fields = 50
limit_request_field_size = 8190
accesslog = None  # the app writes one structured line per request
loglevel = _config.log_level.lower()
logger_class = "service.logs.GunicornLogger"  # gunicorn's messages through structlog
# Requests gunicorn refuses itself get problem documents too, not HTML pages.
gunicorn_util.write_error = write_gunicorn_error
proc_name = "pastebin-web"

# Every worker process writes its metrics here and /metrics aggregates them.
# Set before any worker imports prometheus_client, which reads it at import.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pastebin-metrics-")


def pre_fork(server, worker):
    # BalancedThreadWorker's share of the connection counts (service/workers.py).
    worker.load_slot = workers_module.claim_slot()


def post_fork(server, worker):
    configure_logging(_config)


def worker_exit(server, worker):
    close = getattr(worker.wsgi, "close", None)
    if callable(close):
        close()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    workers_module.release_slot(getattr(worker, "load_slot", None))


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
