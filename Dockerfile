# One image for every member of the compose demo: hakv-server, hakv-sentinel, the
# lab's tools and redis-py (for client containers), built from this source tree.
# The base is a build argument because no registry may be reachable where it is built:
# compose.yaml passes BASE_IMAGE (a locally built Debian image on the CI machines).
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src

# Dependencies first, read from pyproject.toml, so a source change does not reinstall them.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
 && pip install -q -r /tmp/requirements.txt "redis>=5.0" \
 && rm /tmp/requirements.txt

COPY common ./common
COPY primary ./primary
COPY replica ./replica
COPY sentinel ./sentinel
COPY lab ./lab
RUN pip install -q --no-deps . && rm -rf /src/build /src/*.egg-info

COPY docker/ /etc/hakv/
RUN chmod 0755 /etc/hakv/entrypoint.sh /etc/hakv/healthcheck.py \
 && ln -s /etc/hakv/entrypoint.sh /usr/local/bin/hakv-entrypoint \
 && ln -s /etc/hakv/healthcheck.py /usr/local/bin/hakv-health \
 && mkdir -p /data

# compose.yaml mounts a named volume here; no VOLUME line, so one-off containers of the
# image (clients, tools) don't leave anonymous volumes behind.
WORKDIR /data
EXPOSE 6379 26379
ENTRYPOINT ["hakv-entrypoint"]
CMD ["node"]
