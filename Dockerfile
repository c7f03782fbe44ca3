# The maas-gateway image: the gateway (`serve`), the simulator (`sim`) and the deploy helpers in one.
#   docker build -t ghcr.io/maas-gateway/maas-gateway:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml README.md MANIFEST.in ./
COPY src ./src
RUN pip install . \
    && rm -rf /build \
    && groupadd --gid 10001 maas \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin maas

# A numeric user, so that Kubernetes can check runAsNonRoot; OpenShift replaces it with its own.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
ENTRYPOINT ["maas"]
CMD ["--help"]
