# botkit in a container: `docker build -t botkit .` then see docker-compose.yml.
# The config is mounted at /config/config.yaml (secrets come from the environment as
# ${VARS}); the SQLite store lives on the /data volume. The config must let the HTTP
# server listen on the container's interface for the health check:
#   server: {host: 0.0.0.0, port: 3000}
#   store: {url: "sqlite:////data/botkit.db"}

# -- build: wheels for botkit and the platform extras ---------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/botkit
ENV PATH=/opt/botkit/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY botkit ./botkit
COPY plugins ./plugins
# the project itself, from source: its dependencies are pinned by pyproject.toml ranges
# hadolint ignore=DL3013
RUN pip install ".[slack,discord,teams,postgres,fast]"

# -- run: the virtualenv only, as an unprivileged user --------------------------------
FROM python:3.11-slim
# jemalloc: memory a burst took goes back to the system once it is over (botkit/allocator.py)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libjemalloc2 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 botkit \
    && useradd --system --uid 10001 --gid botkit --home-dir /data --no-create-home botkit \
    && mkdir -p /data /config \
    && chown botkit:botkit /data
COPY --from=build /opt/botkit /opt/botkit
# BOTKIT_CONFIG: every botkit command in the container (run, sessions, feedback) reads this config
# BOTKIT_ALLOCATOR: `botkit run` re-executes itself on jemalloc
ENV PATH=/opt/botkit/bin:$PATH PYTHONUNBUFFERED=1 BOTKIT_PORT=3000 BOTKIT_CONFIG=/config/config.yaml \
    BOTKIT_ALLOCATOR=jemalloc
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
# SIGTERM: stop taking messages, let answers in flight finish (or mark them), then exit
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BOTKIT_PORT', '3000'), timeout=4)"]
ENTRYPOINT ["botkit"]
CMD ["run", "-c", "/config/config.yaml"]
