# The image serves on 0.0.0.0, so the control API (/_sandbox: reset, clients, clock) must be locked: `sandbox serve`
# refuses to start without an admin token. Pass one at run time (never bake it into the image):
#   docker run -p 8080:8080 -v sandbox-data:/data \
#     -e SANDBOX_ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))') provider-sandbox
# and send it on control calls: `Authorization: Bearer <token>` (or `X-Sandbox-Admin-Token: <token>`).
# Provider APIs need no admin token; /_sandbox/health stays open for the health check (status and version only).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SANDBOX_STORE=sqlite:////data/sandbox.db SANDBOX_HOST=0.0.0.0 SANDBOX_PORT=8080 SANDBOX_WORKERS=2
WORKDIR /app
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY sandbox ./sandbox
COPY contract_tests ./contract_tests
# the locked dependency set (constraints.txt, the one CI tests with); the check extra makes `sandbox check` work here
RUN pip install --no-cache-dir -c constraints.txt '.[redis,check]' \
 && useradd --create-home --uid 10001 sandbox \
 && mkdir -p /data && chown sandbox /data
USER sandbox
EXPOSE 8080
VOLUME /data
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/_sandbox/health').status == 200 else 1)"
# without SANDBOX_ADMIN_TOKEN this exits with a message saying how to set one
CMD ["sandbox", "serve"]
