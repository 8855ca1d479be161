# codemonkeys itself in a container. Sandboxes are sibling containers on the host's engine
# (its socket is mounted). Your repository is mounted read-write at the same path (--apply
# commits a branch into it; the working tree is never touched) and the container runs as
# you, so what it writes (the branch, runs/) stays yours:
#
#   docker build -t codemonkeys .
#   docker run --rm -it --user "$(id -u):$(id -g)" \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock -v "$PWD:$PWD" -w "$PWD" \
#     -e ANTHROPIC_API_KEY codemonkeys \
#     solve --repo . --issue-file ISSUE.md --model anthropic/claude-sonnet-4-5 --apply
#
# Records go to ./runs/ as without a container. When the sandbox image is missing the tool
# builds it: from Docker Hub, else offline from Debian packages (debootstrap + docker CLI,
# both installed here; debootstrap needs root: run that once without --user, or build the
# sandbox image on the host with `bash containers/build-offline-image.sh`).
#
# BASE is any Debian bookworm image with python3 >= 3.11; without a registry, build on the
# offline base: docker build --build-arg BASE=codemonkeys-debian-base:bookworm -t codemonkeys .
# Behind a TLS-intercepting proxy, put its CA in containers/ca-certificates/ first.
ARG BASE=python:3.11-slim
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_NO_CACHE=1 \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY containers/ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates git patch debootstrap docker.io python3 python3-venv python3-pip \
 && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory '*' \
 && python3 -m pip install uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY codemonkeys ./codemonkeys
COPY prompts ./prompts
COPY containers ./containers
RUN uv sync --frozen --no-dev --python /usr/bin/python3 \
 && /app/.venv/bin/codemonkeys version
ENTRYPOINT ["/app/.venv/bin/codemonkeys"]
