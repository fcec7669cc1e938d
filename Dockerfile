# One image for the tracekit collector (and, later, the demo services).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tracekit ./tracekit
COPY collectors ./collectors
COPY tui ./tui
RUN pip install --no-cache-dir .
VOLUME ["/data"]
EXPOSE 4317 4318
# Inside the container the receivers must listen beyond loopback; compose publishes the
# ports on the host's 127.0.0.1 only.
CMD ["tracekit", "collect", "--db", "/data/tracekit.duckdb", "--grpc", "0.0.0.0:4317", "--http", "0.0.0.0:4318"]
