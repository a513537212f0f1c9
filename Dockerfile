# The one image behind every application service of docker-compose.yml (web, worker,
# beat, flower, migrate); only the command differs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# alembic.ini finds the migrations at /app/shared/migrations (WORKDIR is /app).
COPY alembic.ini ./
COPY shared ./shared
COPY web ./web
COPY worker ./worker
RUN pip install --no-deps . \
    && rm -rf build *.egg-info \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /app/var \
    && chown app:app /app/var

USER app
EXPOSE 8000 5555

# uvicorn workers with the Flask app in WEB_THREADS threads (web/gunicorn_config.py): event streams
# and slow clients hold no thread. Gunicorn reads the number of processes from WEB_CONCURRENCY (default 1).
CMD ["gunicorn", "--config", "python:web.gunicorn_config", \
     "--bind", "0.0.0.0:8000", "--access-logfile", "-", "web.asgi:create_asgi()"]
