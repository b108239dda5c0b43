# Recording Gateway: `recording-gateway serve`, as an unprivileged user.
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 gateway
WORKDIR /srv/gateway

COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER gateway
# It binds beyond loopback, so it starts only with client auth configured: pass
# GATEWAY_API_KEYS (or GATEWAY_CONFIG with api_keys or [auth.jwt]) besides the providers'.
ENV GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
# Exec form: the gateway is PID 1 and gets the SIGTERM itself; it drains for
# GATEWAY_SHUTDOWN_GRACE (20 s) and exits 0. `docker stop` kills after 10 s unless told
# longer: `docker stop -t 30` (Compose: stop_grace_period: 30s).
STOPSIGNAL SIGTERM
CMD ["recording-gateway", "serve"]
