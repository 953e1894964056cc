# pipeline-alert-router: multi-stage build, slim runtime, non-root.
# Build: docker build -t pipeline-alert-router .
# Run:   docker run -p 8080:8080 -v router-data:/var/lib/router \
#          -v "$PWD/config:/etc/router/config:ro" -e ROUTER_INBOUND_TOKENS='{"me":"..."}' \
#          pipeline-alert-router
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY router ./router
# The same install as the README's `make run`, minus the test tools.
RUN python -m venv /opt/router \
 && /opt/router/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/router/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/router --create-home router
COPY --from=build /opt/router /opt/router
COPY config /etc/router/config
ENV PATH=/opt/router/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ROUTER_CONFIG=/etc/router/config \
    ROUTER_HOST=0.0.0.0 \
    ROUTER_PORT=8080 \
    ROUTER_DATABASE_URL=sqlite:////var/lib/router/router.db \
    ROUTER_LOG_FORMAT=json
USER router
WORKDIR /var/lib/router
VOLUME ["/var/lib/router"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["router"]
CMD ["serve"]
