# The worker image for docker-compose.yml (production-like stack).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY domain domain
COPY workflows workflows
COPY activities activities
COPY stack stack
COPY demo demo
COPY cli cli
COPY console console
COPY ingest ingest
COPY prompts prompts
COPY worker.py starter.py ./
# The exact versions the test suite ran with (see `make lock`).
RUN pip install --no-cache-dir -c requirements.lock .
# The worker retries until Temporal and Postgres answer, so start order does not matter.
CMD ["python", "worker.py"]
