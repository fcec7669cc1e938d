# One image for the tracekit collector and the demo shop's services.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tracekit ./tracekit
COPY collectors ./collectors
COPY tui ./tui
# gcc builds the compiled parts (the OTLP span decoder, the critical-path walk) and leaves
# with its layer. The lake extra lets collectors ship to a lake (docker compose --profile lake).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir .[lake] \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
VOLUME ["/data"]
EXPOSE 4317 4318 9411
# Inside the container the receivers must listen beyond loopback; compose publishes the
# ports on the host's 127.0.0.1 only.
CMD ["tracekit", "collect", "--db", "/data/tracekit.duckdb", "--grpc", "0.0.0.0:4317", "--http", "0.0.0.0:4318"]
