# codemonkeys itself in a container. Sandboxes are sibling containers on the host engine:
#   docker build -t codemonkeys .
#   docker run --rm -it -v /var/run/docker.sock:/var/run/docker.sock \
#     -v "$PWD/runs:/app/runs" -e ANTHROPIC_API_KEY codemonkeys solve --repo /work/repo ...
# (a local repository must be mounted read-only, e.g. -v "$PWD:/work/repo:ro")
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git patch \
 && rm -rf /var/lib/apt/lists/* && pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY codemonkeys ./codemonkeys
COPY prompts ./prompts
COPY containers ./containers
RUN uv sync --frozen --no-dev
ENTRYPOINT ["uv", "run", "--no-dev", "codemonkeys"]
