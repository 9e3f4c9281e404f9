"""Request journal: every request and response per tenant with its contract verdict; secrets redacted.

One store write per request; bodies are truncated so the journal never dominates request cost, and each tenant
keeps its newest ``keep`` entries. Redaction matches whole key names (case, ``-`` and ``_`` ignored) from a list of
secret names, never substrings: ``code`` of an error, ``tokenType`` or ``standingOrders`` stay readable, while
``clientSecret``, ``password``, ``pin``, ``tan`` and tokens go. Query parameters (page tokens, codes, signatures)
are redacted in the journal and, through ``install_log_redaction``, in the server's access log.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
import time
from urllib.parse import parse_qsl, unquote_plus

_COLL = "journal"
REDACTED = "[redacted]"
BODY_LIMIT = 2048


def _norm(name) -> str:
    return re.sub(r"[\s_-]", "", str(name)).lower()


# Whole key names (normalised: lower case, no "-", "_" or spaces) whose values are secret, in bodies and headers.
SECRET_NAMES = frozenset(_norm(n) for n in (
    "password", "passwd", "pwd", "passphrase", "secret", "client_secret", "api_secret", "x-api-secret",
    "api_key", "x-api-key", "apikey", "private_key", "webhook_secret", "signing_secret",
    "token", "access_token", "refresh_token", "id_token", "session_token", "security_token",
    "x-amz-security-token", "auth_token", "bearer", "authorization", "proxy-authorization", "cookie", "set-cookie",
    "pin", "tan", "otp", "authorization_code", "auth_code", "code_verifier", "client_assertion", "assertion",
))
# Query parameters: the names above plus those that carry a credential only in URLs (page tokens, OAuth codes,
# pre-signed link signatures).
SECRET_QUERY_NAMES = SECRET_NAMES | frozenset(_norm(n) for n in (
    "code", "signature", "sig", "x-amz-signature", "x-amz-credential", "jwt", "state_token"))
# A request body's top-level ``code`` is an OAuth authorization code (finleap.md s.3 token request); elsewhere
# ``code`` is an error or bank code and helps debugging.
_REQUEST_TOP_LEVEL = frozenset({"code"})


def is_secret(name, names=SECRET_NAMES) -> bool:
    """True when ``name`` is a secret key name (whole name, case, ``-`` and ``_`` ignored)."""
    return _norm(name) in names


# name=value pairs in URLs (query strings, also inside log lines and string values)
_URL_PARAM = re.compile(r"""(?P<lead>[?&;])(?P<name>[^=&#\s"'<>?;]+)=(?P<value>[^&#\s"'<>;]*)""")


def redact_urls(text: str) -> str:
    """``text`` with the value of every secret-named URL query parameter replaced (tokens, codes, signatures)."""
    if "=" not in text:
        return text

    def sub(m):
        if _norm(unquote_plus(m.group("name"))) in SECRET_QUERY_NAMES and m.group("value"):
            return f"{m.group('lead')}{m.group('name')}={REDACTED}"
        return m.group(0)
    return _URL_PARAM.sub(sub, text)


def redact_query(query: str) -> str:
    """A raw query string with secret-named parameters' values replaced; order and encoding otherwise kept."""
    return redact_urls("?" + query)[1:] if query else query


def redact(value, extra: frozenset = frozenset()):
    """Replace the value of every secret key (recursively, whole names) with '[redacted]'; ``extra``: more names
    for the top level only. Empty values stay visible (an empty secret is a useful debugging fact), and URLs in
    strings lose their secret query parameters."""
    if isinstance(value, dict):
        return {k: (REDACTED if (is_secret(k) or _norm(k) in extra) and v not in (None, "") else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_urls(value)
    return value


# "key": value / key=value in bodies that are not valid JSON (malformed requests still get journalled)
_TEXT_KEY = re.compile(r"""(?P<q>["']?)(?P<key>[A-Za-z][\w.\-]*)(?P=q)\s*[:=]\s*""")
_UNQUOTED_END = re.compile(r"[&,}\]\r\n;]")


def redact_text(text: str, extra: frozenset = frozenset()) -> str:
    """Redact secret-named values in text that did not parse: a quoted value up to its closing quote (escapes
    honoured; unterminated = to the end), an unquoted one up to the next separator, so no tail leaks."""
    out, pos = [], 0
    for m in _TEXT_KEY.finditer(text):
        if m.start() < pos or not (is_secret(m.group("key")) or _norm(m.group("key")) in extra):
            continue
        start = m.end()
        if start < len(text) and text[start] in "\"'":
            quote, i = text[start], start + 1
            while i < len(text) and text[i] != quote:
                i += 2 if text[i] == "\\" else 1
            end, value_start = min(i, len(text)), start + 1
        else:
            found = _UNQUOTED_END.search(text, start)
            end, value_start = (found.start() if found else len(text)), start
        if end > value_start:
            out.append(text[pos:value_start] + REDACTED)
            pos = end
    out.append(text[pos:])
    return redact_urls("".join(out))


def _body(raw: bytes, content_type: str | None, extra: frozenset = frozenset()):
    if not raw:
        return None
    if content_type and "json" in content_type:
        if len(raw) > BODY_LIMIT:
            return {"truncated": True, "bytes": len(raw), "contentType": content_type}
        try:
            return redact(json.loads(raw), extra)
        except (ValueError, RecursionError):
            pass
    if content_type and "x-www-form-urlencoded" in content_type:
        return redact(dict(parse_qsl(raw.decode("utf-8", "replace"))), extra)
    if content_type is None or content_type.startswith(("text/", "application/")):
        text = raw[:BODY_LIMIT].decode("utf-8", "replace")
        return redact_text(text, extra) + ("..." if len(raw) > BODY_LIMIT else "")
    return {"bytes": len(raw), "contentType": content_type}


class Journal:
    def __init__(self, store, keep: int = 5000, enabled: bool = True):
        self.store, self.keep, self.enabled = store, keep, enabled
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._since_trim: dict[str, int] = {}
        # trim a tenant after this many of its writes (per process): a small journal on every write, a large one
        # every 100, so a tenant holds at most keep + trim_every entries per writing process, and reads show keep
        self.trim_every = max(1, min(100, keep // 10))

    def record(self, tenant: str, entry: dict) -> None:
        """Append one entry; every ``trim_every`` writes *of this tenant*, trim it to its newest ``keep``.

        (A process-wide counter trimmed only the tenant that happened to make the 500th write, and a racy
        ``+= 1`` under threads could skip the multiple altogether: one tenant kept 2,500 rows against 10.)"""
        if not self.enabled:
            return
        key = f"{time.time_ns():020d}-{os.getpid():07d}-{next(self._seq):09d}"
        self.store.put(tenant, _COLL, key, entry)
        with self._lock:
            count = self._since_trim.get(tenant, 0) + 1
            due = count >= self.trim_every
            self._since_trim[tenant] = 0 if due else count
            if len(self._since_trim) > 10_000:   # bounded memory with very many tenants
                self._since_trim.clear()
        if due:
            self.store.trim(tenant, _COLL, self.keep)

    def entry(self, *, at: str, provider: str | None, operation: str | None, method: str, path: str,
              query: str, status: int, duration_ms: float, req_headers: dict, req_body: bytes,
              req_type: str | None, resp_body: bytes | None, resp_type: str | None, verdict: dict) -> dict:
        headers = {k: (REDACTED if is_secret(k) else redact_urls(str(v))) for k, v in req_headers.items()}
        if resp_body is not None and len(resp_body) > BODY_LIMIT:
            body = {"truncated": True, "bytes": len(resp_body), "contentType": resp_type}
        else:
            body = _body(resp_body or b"", resp_type)
        return {"at": at, "provider": provider, "operation": operation, "method": method, "path": path,
                "query": redact_query(query), "status": status, "durationMs": round(duration_ms, 3),
                "request": {"headers": headers, "body": _body(req_body, req_type, _REQUEST_TOP_LEVEL)},
                "response": {"body": body}, "verdict": verdict}

    def read(self, tenant: str, limit: int = 100, operation: str | None = None) -> list[dict]:
        """Newest first; never more than ``keep`` entries."""
        limit = min(limit, self.keep) if self.keep > 0 else limit
        entries = [v for _, v in self.store.list(tenant, _COLL, reverse=True, limit=None if operation else limit)]
        if operation:
            entries = [e for e in entries if e.get("operation") == operation][:limit]
        return entries


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secret query parameters (page tokens, codes, signatures) in a record's
    message: werkzeug's and gunicorn's access lines print the request path with its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:   # a malformed record is logging's problem, not ours
            return True
        cleaned = redact_urls(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_ACCESS_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


def install_log_redaction() -> None:
    """Install ``RedactingFilter`` on the served server's loggers (werkzeug, gunicorn); idempotent."""
    for name in _ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
