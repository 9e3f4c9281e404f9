"""Peers for `make bench PEERS=1`: Prism (a static OpenAPI mock) and WireMock (a stub server with a request
journal) answer the benchmark's operations with the bytes the sandbox sent, under the same load as the ceiling.

Both come from the npm registry (``npx --yes``): ``@stoplight/prism-cli`` and ``wiremock`` (the standalone jar in an
npm package; it needs ``java``). Without ``npx`` or ``java`` the peer is skipped with a message. Each stub is built
from the captured responses and the operations' routes (bench/flows.py ROUTES): any id matches a route's
placeholder, as on the ceiling. Both also answer ``GET /_sandbox/health`` so start-up is timed alike.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

from flows import ROUTES

PRISM = "@stoplight/prism-cli@5.16.0"
WIREMOCK = "wiremock@3.13.2"
HEALTH = {"status": "ok"}
_PLACEHOLDER = re.compile(r"<[^>]+>")


def missing(peer: str) -> str | None:
    """Why ``peer`` cannot run on this machine, or None."""
    if not shutil.which("npx"):
        return "npx (node) is not installed"
    if peer == "wiremock" and not shutil.which("java"):
        return "java is not installed"
    return None


def fetch(peer: str, log) -> str | None:
    """Bring the peer's npm package into npx's cache before it is timed; why not, or None."""
    package = PRISM if peer == "prism" else WIREMOCK
    args = ["npx", "--yes", package, "--version"] if peer == "prism" else ["npx", "--yes", "-p", package, "true"]
    log(f"peers: fetching {package} (npx cache)")
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"npx could not fetch {package}: {exc}"
    if done.returncode != 0:
        return f"npx could not fetch {package}: {done.stderr.strip()[-300:]}"
    return None


def _body(cap: dict) -> str:
    return base64.b64decode(cap["body_b64"]).decode()


def _routes(ops) -> list[tuple[str, str, str]]:
    """(op, method, route with placeholders numbered p1, p2, ...) for the captured operations."""
    out = []
    for op in ops:
        method, rule = ROUTES[op]
        counter = iter(range(1, 100))
        out.append((op, method, _PLACEHOLDER.sub(lambda _: f"{{p{next(counter)}}}", rule)))
    return out


def prism_spec(caps: dict, path: Path) -> Path:
    """An OpenAPI 3.0 document whose only content is each operation's captured response as its example."""
    paths: dict = {"/_sandbox/health": {"get": {"responses": {"200": {
        "description": "health", "content": {"application/json": {"example": HEALTH}}}}}}}
    for op, method, route in _routes(caps):
        cap = caps[op]
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"{(p\d+)}", route)]
        body = {"requestBody": {"content": {t: {"schema": {}} for t in (
            "application/json", "application/x-www-form-urlencoded")}}} if method in ("POST", "PUT", "PATCH") else {}
        paths.setdefault(route, {})[method.lower()] = {
            "parameters": params, **body,
            "responses": {str(cap["status"]): {"description": op, "content": {
                "application/json": {"example": json.loads(_body(cap))}}}}}
    path.write_text(json.dumps({"openapi": "3.0.3", "info": {"title": "provider-sandbox bench", "version": "1"},
                                "paths": paths}))
    return path


def wiremock_root(caps: dict, root: Path) -> Path:
    """A WireMock root directory with one stub mapping per operation (the captured status, type and body)."""
    mappings = root / "mappings"
    mappings.mkdir(parents=True, exist_ok=True)
    stubs = [("health", "GET", "/_sandbox/health", 200, "application/json", json.dumps(HEALTH))]
    for op, method, route in _routes(caps):
        cap = caps[op]
        stubs.append((op, method, route, cap["status"], cap.get("content_type") or "application/json", _body(cap)))
    for name, method, route, status, ctype, body in stubs:
        pattern = "^" + re.sub(r"\\{p\d+\\}", "[^/]+", re.escape(route)) + "$"
        (mappings / f"{name}.json").write_text(json.dumps({
            "request": {"method": method, "urlPathPattern": pattern},
            "response": {"status": status, "headers": {"Content-Type": ctype}, "body": body}}))
    return root


def commands(peer: str, port: int, tmp: Path, caps: dict) -> list[str]:
    if peer == "prism":
        spec = prism_spec(caps, tmp / "prism-openapi.json")
        return ["npx", "--yes", PRISM, "mock", "-h", "127.0.0.1", "-p", str(port), "--verboseLevel", "error",
                str(spec)]
    root = wiremock_root(caps, tmp / "wiremock")
    return ["npx", "--yes", WIREMOCK, "--port", str(port), "--bind-address", "127.0.0.1", "--root-dir", str(root),
            "--disable-banner"]
