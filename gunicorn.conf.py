"""Gunicorn settings for the pastebin web process.

Run: gunicorn -c gunicorn.conf.py 'service.app:create_app()'
Each worker process is an event loop (uvicorn) that builds its own app after
the fork; the app opens its connection pool at ASGI startup and closes it at
shutdown.
"""

import os
import shutil
import tempfile

from service.config import Config
from service.logs import stdlib_config

_config = Config.from_env()  # fail fast, with the reason, on a bad setting
_config.check_web()

bind = _config.listen_address
workers = _config.web_workers
worker_class = "service.asgi_worker.Worker"
keepalive = 5
timeout = 30
graceful_timeout = 20
accesslog = None  # the app writes one structured line per request
loglevel = _config.log_level.lower()
logconfig_dict = stdlib_config(_config)
proc_name = "pastebin-web"
# gunicorn's control socket can stop or scale workers; nobody here needs it.
control_socket_disable = True

# Every worker process writes its metrics here and /metrics aggregates them.
# Set before any worker imports prometheus_client, which reads it at import.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pastebin-metrics-")


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
