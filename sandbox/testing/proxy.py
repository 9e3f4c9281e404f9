"""A validating proxy between a client and a provider (real, or a served sandbox), and a replay stub server.

The client points its base URL at the proxy and sends the provider's own paths. The proxy names the catalogue
operation (the routes ``core.dispatch`` mounts, built from the catalogue and the provider's overlay by
``core.operations.build_operations``), validates the request and the upstream's response against the operation's
schemas, forwards everything unchanged and adds its verdict in ``X-Sandbox-Contract`` (``valid``,
``request-invalid``, ``response-invalid``, ``unknown-operation``; ``upstream-unreachable`` when it answered itself;
``unchecked`` when the answer's Content-Encoding cannot be undone) with a short ``X-Sandbox-Contract-Reason``. Every
exchange goes to an in-memory journal (``GET /_proxy/journal``) and, with a record directory, to a cassette
(``testing/cassettes.py``), which ``create_replay_app`` serves back.
"""
from __future__ import annotations

import json
import threading
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache
from http.cookiejar import DefaultCookiePolicy
from types import SimpleNamespace
from urllib.parse import quote

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.routing.exceptions import RequestRedirect

from ..core.clock import isoformat
from ..core.errors import SandboxError, ValidationFailed
from ..core.journal import Journal, redact_urls
from ..core.operations import Operation, build_operations, flask_rule, with_empty_tail
from ..core.store import MemoryStore
from ..core.validation import schema_id
from .cassettes import HOP_BY_HOP, CassetteWriter, body_matches, decode_body, encode_body, query_pairs, \
    value_matches, _string_matches

VERDICT_HEADER = "X-Sandbox-Contract"
REASON_HEADER = "X-Sandbox-Contract-Reason"
OPERATION_HEADER = "X-Sandbox-Operation"
REPLAY_HEADER = "X-Sandbox-Replay"
VERDICTS = ("valid", "request-invalid", "response-invalid", "unknown-operation", "upstream-unreachable", "unchecked")
CONTROL = "/_proxy"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def provider_name(name: str) -> str:
    """``open-finance`` or ``open_finance`` -> ``open_finance``; raises ValueError naming the known providers."""
    from ..providers import PROVIDERS

    wanted = (name or "").strip().lower().replace("-", "_")
    known = [d.name for d in PROVIDERS]
    if wanted not in known:
        raise ValueError(f"unknown provider {name!r} (one of: {', '.join(known)})")
    return wanted


def schemas():
    """The schema registry the sandbox itself validates with (loaded once per process)."""
    from ..core.context import schemas as registry
    return registry()


# --- which operation is this? ------------------------------------------------------------------------------------
@dataclass
class Match:
    op: Operation | None
    reason: str = ""


class Router:
    """Method + path (relative to the provider's base URL) -> catalogue operation, with the rules the sandbox
    serves: every catalogue path and alias, empty-tail variants, and hosted pages that live under the API base."""

    def __init__(self, provider: str):
        from ..providers import PROVIDERS
        from ..spec import provider as section_of

        self.provider = provider_name(provider)
        decl = next(d for d in PROVIDERS if d.name == self.provider)
        section = section_of(self.provider)
        ops = build_operations(decl, section)
        pages_here = (section.get("pages_prefix") or section["sandbox_prefix"]) == section["sandbox_prefix"]
        self.ops = {n: o for n, o in ops.items() if o.kind == "operation" or pages_here}
        rules = []
        for name, op in self.ops.items():
            routes = list(op.routes)
            if op.empty_tail:
                routes += [(m, t) for m, p in op.routes if (t := with_empty_tail(p)) is not None]
            for verb, path in dict.fromkeys(routes):
                rules.append(Rule(flask_rule(path, op.slash_params), endpoint=name, methods=[verb],
                                  strict_slashes=False))
        self.map = Map(rules, strict_slashes=False, merge_slashes=False)

    def match(self, method: str, path: str) -> Match:
        adapter = self.map.bind("provider.invalid", "/")
        try:
            name, _ = adapter.match(path or "/", method.upper())
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            return Match(None, f"{path} is a {self.provider} path for {allowed}, not {method}")
        except RequestRedirect:
            return Match(None, f"no {self.provider} operation for {method} {path}")
        except HTTPException:
            return Match(None, f"no {self.provider} operation for {method} {path}")
        return Match(self.ops[name])


@lru_cache(maxsize=8)
def router(provider: str) -> Router:
    return Router(provider)


# --- checks ------------------------------------------------------------------------------------------------------
def _problem(kind: str, message: str, schema: str | None = None, pointer: str | None = None) -> dict:
    out = {"kind": kind, "message": message}
    if schema:
        out["schema"] = schema
    if pointer is not None:
        out["pointer"] = pointer
    return out


def check_request(op: Operation, req) -> list[dict]:
    """What is wrong with the request for ``op`` (needs a Flask request context): required headers and the
    headers, query and body schemas, parsed exactly as the sandbox's dispatcher parses them."""
    from ..core.dispatch import parse_body, parse_headers

    if op.kind == "page":
        return []
    registry = schemas()
    ctx = SimpleNamespace(op=op, provider=op.provider, request=req, sandbox=SimpleNamespace(schemas=registry),
                          body=None, files={})
    problems: list[dict] = []

    def run(part: str, fn) -> None:
        try:
            fn()
        except ValidationFailed as exc:
            problems.extend(_problem(part, e["message"], schema_id(op.provider, f"{op.name}.{part}"), e["pointer"])
                            for e in exc.errors[:10])
        except SandboxError as exc:
            problems.append(_problem(part, str(exc)))

    run("headers", lambda: parse_headers(ctx))
    sid = schema_id(op.provider, f"{op.name}.query")
    if registry.has(sid):
        problems.extend(_problem("query", e["message"], sid, e["pointer"])
                        for e in registry.errors(sid, req.args.to_dict())[:10])
    run("request", lambda: parse_body(ctx))
    return problems


def check_response(op: Operation, status: int, body_format: str, body, *, head: bool = False) -> list[dict]:
    """What is wrong with a response to ``op``: a status the catalogue does not list, or a body that violates
    ``<op>.response`` (2xx) or the provider's ``error`` schema (4xx/5xx), as contract_tests/checks.py judges.
    ``head``: the answer to a HEAD request, which has no body to judge."""
    if op.kind == "page":
        return []
    problems = []
    if status not in op.statuses:
        problems.append(_problem("status", f"status {status} is not listed for {op.id} "
                                           f"(catalogue: {', '.join(map(str, op.statuses))})"))
    if head or status < 200 or 300 <= status < 400:
        return problems
    if status < 400 and op.response != "json":
        return problems
    sid = schema_id(op.provider, f"{op.name}.response" if status < 400 else "error")
    registry = schemas()
    if not registry.has(sid):
        return problems
    if body_format != "json":
        problems.append(_problem("response", "body is not JSON" if body_format != "empty" else "body is empty",
                                 sid, ""))
        return problems
    problems.extend(_problem("response", e["message"], sid, e["pointer"]) for e in registry.errors(sid, body)[:10])
    return problems


def verdict_of(op: Operation | None, miss_reason: str, request_problems: list, response_problems: list) -> dict:
    """One verdict per exchange: an unknown operation first, then the request, then the response."""
    if op is None:
        return {"verdict": "unknown-operation", "reason": miss_reason, "problems": []}
    if request_problems:
        return {"verdict": "request-invalid", "reason": _reason(request_problems),
                "problems": request_problems + response_problems}
    if response_problems:
        return {"verdict": "response-invalid", "reason": _reason(response_problems), "problems": response_problems}
    return {"verdict": "valid", "reason": "", "problems": []}


def _reason(problems: list) -> str:
    first = problems[0]
    where = f"{first['kind']} {first['pointer'] or '/'}: " if first.get("pointer") is not None else ""
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return where + first["message"] + more


def _header_safe(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _decoded(raw: bytes, encoding: str | None) -> bytes | None:
    """The body without its Content-Encoding (for validation and cassettes), or None if it cannot be decoded."""
    encoding = (encoding or "identity").strip().lower()
    try:
        if encoding in ("identity", ""):
            return raw
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(raw)
            except zlib.error:
                return zlib.decompress(raw, -zlib.MAX_WBITS)
    except zlib.error:
        return None
    return None


def _raw_path(environ, path: str) -> str:
    """The path as the client wrote it (percent-escapes kept: ``TX%23…`` must stay escaped upstream)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if raw.startswith(("http://", "https://")):
        raw = "/" + raw.split("/", 3)[3] if raw.count("/") >= 3 else "/"
    raw = raw.split("?", 1)[0]
    return raw if raw.startswith("/") else quote(path, safe="/:@!$&'()*+,;=-._~%")


# --- the proxy ---------------------------------------------------------------------------------------------------
def _session():
    import requests
    from urllib3.util import SKIP_HEADER

    session = requests.Session()
    session.trust_env = False          # no proxies or .netrc credentials from the environment
    session.headers.clear()            # forward the client's headers, add none of our own
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))   # never carry cookies between clients
    return session, SKIP_HEADER


def create_proxy_app(provider: str, upstream: str, *, record: str | None = None, timeout: float = 60.0,
                     connect_timeout: float = 5.0, journal_keep: int = 1000, session=None) -> Flask:
    """The proxy as a WSGI app: forwards to ``upstream`` (the provider's base URL), validates, journals and, with
    ``record``, writes cassettes there. ``session`` (a requests.Session) is injectable for tests."""
    import requests

    name = provider_name(provider)
    routes = router(name)
    upstream = upstream.rstrip("/")
    http, skip = _session()
    http = session or http
    writer = CassetteWriter(record) if record else None
    journal = Journal(MemoryStore(), keep=journal_keep)
    app = Flask(__name__)
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.config["PROXY"] = {"provider": name, "upstream": upstream, "record": str(writer.dir) if writer else None}

    @app.get(CONTROL + "/journal")
    def proxy_journal():
        raw = request.args.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= 5000:
            return jsonify(error={"kind": "bad_request", "message": "limit must be an integer between 1 and 5000"}), 400
        return {"provider": name, "upstream": upstream,
                "entries": journal.read("proxy", int(raw), request.args.get("operation"))}

    @app.get(CONTROL + "/health")
    def proxy_health():
        return {"status": "ok", "mode": "proxy", **app.config["PROXY"]}

    def forward(path: str = ""):
        started = time.perf_counter()
        body = request.get_data(cache=True)
        match = routes.match(request.method, request.path)
        req_problems = check_request(match.op, request) if match.op else []
        headers = {}
        connection_named = {h.strip().lower() for h in request.headers.get("Connection", "").split(",")}
        for key, value in request.headers.items():
            low = key.lower()
            if low in HOP_BY_HOP or low in connection_named or low in ("host", "content-length"):
                continue
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if not any(k.lower() == "user-agent" for k in headers):
            headers["User-Agent"] = skip   # urllib3 would otherwise add its own
        query = request.query_string.decode("latin-1")
        url = upstream + _raw_path(request.environ, request.path) + (f"?{query}" if query else "")
        op_id = match.op.id if match.op else None
        try:
            upstream_resp = http.request(request.method, url, headers=headers, data=body or None,
                                         allow_redirects=False, stream=True, timeout=(connect_timeout, timeout))
            raw = upstream_resp.raw.read(decode_content=False)
            upstream_resp.close()
        except requests.Timeout as exc:
            return _own_error(504, "upstream_timeout", f"{upstream} did not answer within {timeout:g} s: "
                              f"{redact_urls(str(exc))[:300]}",
                              match, started, body, journal)
        except requests.RequestException as exc:
            return _own_error(502, "upstream_unreachable", f"cannot reach {upstream}: {exc.__class__.__name__}: "
                              f"{redact_urls(str(exc))[:300]}", match, started, body, journal)
        status = upstream_resp.status_code
        resp_headers = [(k, v) for k, v in upstream_resp.raw.headers.items()]
        ctype = upstream_resp.headers.get("Content-Type")
        decoded = _decoded(raw, upstream_resp.headers.get("Content-Encoding"))
        if decoded is None:   # an encoding we cannot undo (e.g. br): passed through, but not judged
            fmt, parsed = "base64", None
            verdict = verdict_of(match.op, match.reason, req_problems, [])
            if verdict["verdict"] == "valid":
                verdict = {"verdict": "unchecked", "problems": [], "reason": "response Content-Encoding "
                           f"{upstream_resp.headers.get('Content-Encoding')} cannot be decoded for validation"}
        else:
            fmt, parsed = encode_body(decoded, ctype)
            resp_problems = check_response(match.op, status, fmt, parsed, head=request.method == "HEAD") \
                if match.op else []
            verdict = verdict_of(match.op, match.reason, req_problems, resp_problems)
        journal.record("proxy", dict(journal.entry(
            at=isoformat_now(), provider=name, operation=op_id, method=request.method, path=request.path,
            query=query, status=status, duration_ms=(time.perf_counter() - started) * 1000,
            req_headers=dict(request.headers), req_body=body, req_type=request.mimetype, resp_body=decoded,
            resp_type=(ctype or "").split(";")[0] or None, verdict=verdict), upstream=upstream))
        if writer and decoded is not None:
            req_fmt, req_body = encode_body(body, request.content_type)
            writer.write({
                "provider": name, "operation": op_id, "recordedAt": isoformat_now(), "upstream": upstream,
                "request": {"method": request.method, "path": request.path, "query": query,
                            "headers": [[k, v] for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP],
                            "bodyFormat": req_fmt, "body": req_body},
                "response": {"status": status,
                             "headers": [[k, v] for k, v in resp_headers if k.lower() not in HOP_BY_HOP
                                         and k.lower() not in ("content-length", "content-encoding")],
                             "bodyFormat": fmt, "body": parsed},
                "verdict": verdict})
        response = Response(raw, status=status)
        had_type = False
        for key, value in resp_headers:
            low = key.lower()
            if low in HOP_BY_HOP or low == "content-length":
                continue
            if low == "content-type":
                had_type = True
                response.headers["Content-Type"] = value
                continue
            if low in (VERDICT_HEADER.lower(), REASON_HEADER.lower(), OPERATION_HEADER.lower()):
                continue
            response.headers.add(key, value)
        if not had_type:
            del response.headers["Content-Type"]
        if request.method == "HEAD" and upstream_resp.headers.get("Content-Length"):
            response.headers["Content-Length"] = upstream_resp.headers["Content-Length"]
        _mark(response, verdict, op_id)
        return response

    app.add_url_rule("/", "forward", forward, methods=METHODS, provide_automatic_options=False)
    app.add_url_rule("/<path:path>", "forward_path", forward, methods=METHODS, provide_automatic_options=False)
    return app


def isoformat_now() -> str:
    from datetime import datetime, timezone
    return isoformat(datetime.now(timezone.utc))


def _mark(response: Response, verdict: dict, op_id: str | None) -> None:
    response.headers[VERDICT_HEADER] = verdict["verdict"]
    if verdict.get("reason"):
        response.headers[REASON_HEADER] = _header_safe(verdict["reason"])
    if op_id:
        response.headers[OPERATION_HEADER] = op_id


def _own_error(status: int, kind: str, message: str, match: Match, started: float, body: bytes, journal) -> Response:
    """The proxy's own answer when the upstream gave none: JSON, never a traceback."""
    response = jsonify(error={"kind": kind, "message": message, "operation": match.op.id if match.op else None})
    response.status_code = status
    verdict = {"verdict": "upstream-unreachable", "reason": message, "problems": []}
    journal.record("proxy", journal.entry(
        at=isoformat_now(), provider=match.op.provider if match.op else None,
        operation=match.op.id if match.op else None, method=request.method, path=request.path,
        query=request.query_string.decode("latin-1"), status=status,
        duration_ms=(time.perf_counter() - started) * 1000, req_headers=dict(request.headers), req_body=body,
        req_type=request.mimetype, resp_body=response.get_data(), resp_type="application/json", verdict=verdict))
    _mark(response, verdict, match.op.id if match.op else None)
    return response


# --- replay ------------------------------------------------------------------------------------------------------
@dataclass
class _Group:
    """Recorded exchanges of one identical request, in recorded order."""

    method: str
    path: str
    query: list
    body_format: str
    body: object
    cassettes: list
    served: int = 0


class Replayer:
    """Picks the recorded response for a request: same method, path and query (placeholders match any value),
    and the body when the recorded requests differ by body; identical requests get the recorded responses in
    order, then the last one again."""

    def __init__(self, cassettes: list[dict]):
        self.groups: list[_Group] = []
        index: dict[str, _Group] = {}
        for cassette in cassettes:
            req = cassette["request"]
            fmt, body = req.get("bodyFormat", "empty"), req.get("body")
            key = json.dumps([req["method"].upper(), req["path"], query_pairs(req.get("query") or ""), fmt,
                              sorted(body) if fmt == "form" else body], sort_keys=True)
            group = index.get(key)
            if group is None:
                group = index[key] = _Group(req["method"].upper(), req["path"], query_pairs(req.get("query") or ""),
                                            fmt, body, [])
                self.groups.append(group)
            group.cassettes.append(cassette)
        self._lock = threading.Lock()

    def _query_matches(self, recorded: list, incoming: list) -> bool:
        return len(recorded) == len(incoming) and all(
            r[0] == i[0] and value_matches(r[1], i[1]) for r, i in zip(recorded, incoming))

    def find(self, method: str, path: str, query: str, body_format: str, body) -> tuple[dict | None, str]:
        """(cassette, "") or (None, why nothing was recorded for this request)."""
        pairs = query_pairs(query)
        same_path = [g for g in self.groups if g.method == method.upper() and _string_matches(g.path, path)]
        candidates = [g for g in same_path if self._query_matches(g.query, pairs)]
        if not candidates:
            if same_path:
                recorded = sorted({"&".join(f"{k}={v}" for k, v in g.query) or "(none)" for g in same_path})
                return None, f"recorded for {method} {path} only with other query strings: {recorded[:5]}"
            return None, f"nothing was recorded for {method} {path}"
        if len(candidates) > 1:   # the recorded requests differ by body: the body chooses
            candidates = [g for g in candidates if body_matches(g.body_format, g.body, body_format, body)]
            if not candidates:
                return None, f"recorded for {method} {path} only with other request bodies"
        with self._lock:
            group = next((g for g in candidates if g.served < len(g.cassettes)), candidates[-1])
            cassette = group.cassettes[min(group.served, len(group.cassettes) - 1)]
            group.served += 1
        return cassette, ""


def create_replay_app(cassettes: list[dict]) -> Flask:
    """A stub server answering from cassettes (see Replayer); an unmatched request gets a 404 JSON saying that
    nothing was recorded for it. Needs no upstream."""
    replayer = Replayer(cassettes)
    app = Flask(__name__)
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False

    @app.get(CONTROL + "/health")
    def replay_health():
        return {"status": "ok", "mode": "replay", "cassettes": len(cassettes), "requests": len(replayer.groups)}

    def serve(path: str = ""):
        body = request.get_data(cache=True)
        fmt, parsed = encode_body(body, request.content_type)
        query = request.query_string.decode("latin-1")
        cassette, why = replayer.find(request.method, request.path, query, fmt, parsed)
        if cassette is None:
            response = jsonify(error={"kind": "not_recorded", "message": why, "method": request.method,
                                      "path": request.path, "query": query})
            response.status_code = 404
            response.headers[REPLAY_HEADER] = "unmatched"
            return response
        resp = cassette["response"]
        response = Response(decode_body(resp.get("bodyFormat", "empty"), resp.get("body")), status=resp["status"])
        had_type = False
        for key, value in resp.get("headers") or []:
            low = key.lower()
            if low in HOP_BY_HOP or low in ("content-length", "content-encoding") or low in (
                    VERDICT_HEADER.lower(), REASON_HEADER.lower(), OPERATION_HEADER.lower(), REPLAY_HEADER.lower()):
                continue
            if low == "content-type":
                had_type = True
                response.headers["Content-Type"] = value
            else:
                response.headers.add(key, value)
        if not had_type:
            del response.headers["Content-Type"]
        response.headers[REPLAY_HEADER] = cassette["file"]
        verdict = cassette.get("verdict") or {}
        if verdict.get("verdict"):
            _mark(response, verdict, cassette.get("operation"))
        return response

    app.add_url_rule("/", "serve", serve, methods=METHODS, provide_automatic_options=False)
    app.add_url_rule("/<path:path>", "serve_path", serve, methods=METHODS, provide_automatic_options=False)
    return app


__all__ = ["Router", "Replayer", "VERDICT_HEADER", "REASON_HEADER", "check_request", "check_response",
           "create_proxy_app", "create_replay_app", "provider_name", "router"]
