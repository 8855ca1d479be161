# Generic sandbox image: Python 3 + git + patch, a non-root user, /repo as the work dir.
# BASE is any Debian/Ubuntu image: the offline builder passes its debootstrapped base,
# containers/Dockerfile passes debian:bookworm-slim.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN git config --system user.email sandbox@codemonkeys.invalid \
 && git config --system user.name codemonkeys \
 && git config --system --add safe.directory '*' \
 && git config --system init.defaultBranch main \
 && ln -sf /usr/bin/python3 /usr/local/bin/python \
 && mkdir -p /repo
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1
WORKDIR /repo
LABEL org.codemonkeys.image=sandbox
CMD ["sleep", "infinity"]
