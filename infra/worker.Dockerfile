# darkembed worker image: the package, its flows and tasks, and a Prefect process worker.
#   docker build -f infra/worker.Dockerfile -t darkembed-worker .                       (CPU)
#   docker build -f infra/worker.Dockerfile --build-arg TORCH=cuda -t darkembed-worker-gpu .   (GPU)
FROM python:3.11-slim
ARG TORCH=cpu
ENV PIP_NO_CACHE_DIR=1 DARKEMBED_HOME=/opt/darkembed PYTHONUNBUFFERED=1
WORKDIR /opt/darkembed
RUN apt-get update && apt-get install -y --no-install-recommends build-essential git && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml constraints.txt README.md ./
COPY conf ./conf
COPY src ./src
COPY tasks ./tasks
COPY flows ./flows
COPY infra ./infra
# CPU images take PyTorch's CPU wheels (small); GPU images the default CUDA build from PyPI.
RUN if [ "$TORCH" = "cpu" ]; then \
      pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu; \
    fi && pip install -c constraints.txt . psycopg2-binary
# Run as an unprivileged user; /data (the data root volume) is theirs.
RUN useradd --create-home --uid 10002 darkembed && mkdir -p /data && chown darkembed:darkembed /data
USER darkembed
CMD ["prefect", "worker", "start", "--pool", "cpu"]
