# syntax=docker/dockerfile:1
# torghut: one image for every process role (web, worker, beat, consumers, migrations).
#   docker build -t torghut:$(git rev-parse --short HEAD) \
#     --build-arg TORGHUT_VERSION=1.2.3 --build-arg TORGHUT_COMMIT=$(git rev-parse HEAD) .
#   docker run --env-file prod.env torghut:<tag> web        # or worker, beat, migrate, ...
# The roles are in deploy/entrypoint.sh; Kubernetes examples in deploy/k8s/.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtualenv with the runtime requirements (wheels only, no compiler) --------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/base.txt /tmp/requirements/base.txt
RUN pip install --only-binary=:all: -r /tmp/requirements/base.txt

# -- runtime: the virtualenv, the code, collected static files; runs as an unprivileged user -----
FROM ${PYTHON_IMAGE} AS runtime
ARG TORGHUT_VERSION=dev
ARG TORGHUT_COMMIT=unknown
LABEL org.opencontainers.image.title="torghut" \
      org.opencontainers.image.description="Autonomous, LLM-assisted trading bot (Django, Celery, Kafka consumers)" \
      org.opencontainers.image.version="${TORGHUT_VERSION}" \
      org.opencontainers.image.revision="${TORGHUT_COMMIT}"
RUN groupadd --system --gid 10001 torghut \
 && useradd --system --uid 10001 --gid torghut --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin torghut
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=torghut_site.settings \
    TORGHUT_ENV_FILE=/nonexistent \
    TORGHUT_VAR_DIR=/var/lib/torghut \
    TORGHUT_VERSION=${TORGHUT_VERSION} \
    TORGHUT_COMMIT=${TORGHUT_COMMIT} \
    PORT=8181
WORKDIR /app
COPY . /app
# static files are collected into the image (WhiteNoise serves them from TORGHUT_VAR_DIR/static);
# the bytecode is compiled now because the root filesystem is read-only at run time
RUN python manage.py collectstatic --noinput \
 && python -m compileall -q /app \
 && mkdir -p /var/lib/torghut \
 && chown torghut:torghut /var/lib/torghut \
 && chmod 0555 /app/deploy/entrypoint.sh
USER 10001:10001
EXPOSE 8181
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
