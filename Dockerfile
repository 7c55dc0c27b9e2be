# The pastebin service: one image for the web server (the default command), the
# expiry worker and the migrations.
#
#   docker build -t pastebin .                       # dependencies from PyPI
#
# Where the build cannot reach a package index (a base image whose pip has no
# index, a closed network), build a wheelhouse on the host and name it:
#
#   pip wheel . -w wheelhouse
#   docker build --build-arg WHEELHOUSE=wheelhouse -t pastebin .
#
# The wheels must suit the base image's Python (same minor version, a glibc at
# least as new as the host's). `make container-smoke` builds one this way.
#
# Run:  web      the default command (gunicorn on 0.0.0.0:8000)
#       worker   python -m service.worker
#       migrate  python -m service.migrate
# Every setting is an environment variable (README, Configuration).

ARG PYTHON_BASE_IMAGE=python:3.11-slim

FROM ${PYTHON_BASE_IMAGE} AS build
# A directory of the build context holding wheels of every dependency (.dockerignore
# lets `wheelhouse/` through; add another name there before using it); empty:
# install from the package index.
ARG WHEELHOUSE=
WORKDIR /src
# pyproject.toml, and the wheelhouse's wheels when one is named (COPY takes an
# empty argument as none), so only they decide whether this layer is rebuilt.
COPY pyproject.toml ${WHEELHOUSE} ./
# Only the dependencies go into the virtualenv: the service runs from /app, where
# it finds sql/ and migrations/ beside its package.
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
 && python3 -m venv /opt/venv \
 && if [ -n "$WHEELHOUSE" ]; then \
        /opt/venv/bin/pip install --no-cache-dir --no-index --find-links . -r requirements.txt; \
    else \
        /opt/venv/bin/pip install --no-cache-dir -r requirements.txt; \
    fi

FROM ${PYTHON_BASE_IMAGE}
# The user the service runs as (useradd where the base image has it; a minimal
# Debian root file system has no passwd package).
RUN if command -v useradd >/dev/null; then \
        useradd --system --uid 10001 --user-group --no-create-home --home-dir /app \
            --shell /usr/sbin/nologin pastebin; \
    else \
        echo 'pastebin:x:10001:10001::/app:/usr/sbin/nologin' >> /etc/passwd \
        && echo 'pastebin:x:10001:' >> /etc/group; \
    fi
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py ./
COPY service ./service
COPY sql ./sql
COPY migrations ./migrations
RUN python3 -m compileall -q service
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    BIND=0.0.0.0:8000
USER 10001:10001
EXPOSE 8000
# Exec form: gunicorn is PID 1 and gets SIGTERM itself, then stops its workers
# gracefully (README, Operations). The worker's command is exec form too.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "service.app:create_app()"]
