# syntax=docker/dockerfile:1
# Build stage: wheels for Bulwark and its dependencies, compiled here if they must be.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY webhook ./webhook
RUN python -m venv /opt/bulwark \
 && /opt/bulwark/bin/pip install --no-compile . \
 && /opt/bulwark/bin/python -m compileall -q /opt/bulwark/lib

# Final stage: the virtual environment only; no compilers, no pip cache, no source tree.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/bulwark/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/bulwark /opt/bulwark
# A numeric user, so runAsNonRoot can be verified by the kubelet without /etc/passwd.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8443
# The certificate folder is a mounted Secret; the root filesystem can stay read-only.
ENTRYPOINT ["bulwark", "serve"]
CMD ["--cert-dir", "/etc/bulwark/certs"]
