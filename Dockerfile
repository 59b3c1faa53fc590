# The cellgate gateway (and its `cellgate seed` job) for docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs: no data directories, caches or .git in the image.
COPY pyproject.toml README.md ./
COPY locks/cellgate.txt ./locks/
COPY gateway ./gateway
COPY cells ./cells
COPY cache ./cache
# The keystone extra: behind a real cloud's HAProxy it validates tokens (auth_mode=keystone,
# which `serve --nova-config` turns on from [keystone_authtoken]).
RUN pip install -c locks/cellgate.txt '.[keystone]' && rm -rf /src/build

RUN useradd --system --uid 10001 --no-create-home cellgate
USER cellgate
WORKDIR /tmp

EXPOSE 8774
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=10 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8774/healthz', timeout=2)"]
# Deliberately no CELLGATE_ALLOW_INSECURE_NOAUTH here: on 0.0.0.0 the image needs a real
# CELLGATE_AUTH_MODE (jwt, trusted-headers) or that opt-in (docker-compose.yml sets it),
# else `cellgate serve` exits 2 with the reason instead of serving noauth to the network.
CMD ["cellgate", "serve", "--host", "0.0.0.0", "--port", "8774"]
