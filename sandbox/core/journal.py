"""Request journal: every request and response per tenant with its contract verdict; secrets redacted.

One store write per request; bodies are truncated so the journal never dominates request cost, and each tenant
keeps its newest ``keep`` entries.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import time

_COLL = "journal"
_SECRET_KEYS = re.compile(r"(secret|password|passwd|token|authorization|api[-_]?key|otp|pin|tan|^code$)", re.I)
_SECRET_HEADERS = {"authorization", "x-api-key", "x-api-secret", "cookie", "proxy-authorization"}
# key=value or "key": "value" pairs in bodies that are not valid JSON (malformed requests still get journalled)
_SECRET_TEXT = re.compile(r"""((?:secret|password|token|code|otp|pin)\w*["']?\s*[:=]\s*["']?)[^"'&,\s}]*""", re.I)
BODY_LIMIT = 2048
REDACTED = "[redacted]"


def redact(value):
    """Replace the value of every secret-looking key (recursively) with '[redacted]'."""
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEYS.search(str(k)) and v not in (None, "") else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _body(raw: bytes, content_type: str | None):
    if not raw:
        return None
    if content_type and "json" in content_type:
        if len(raw) > BODY_LIMIT:
            return {"truncated": True, "bytes": len(raw), "contentType": content_type}
        try:
            return redact(json.loads(raw))
        except ValueError:
            pass
    if content_type and "x-www-form-urlencoded" in content_type:
        from urllib.parse import parse_qsl
        return redact(dict(parse_qsl(raw.decode("utf-8", "replace"))))
    if content_type is None or content_type.startswith(("text/", "application/")):
        text = raw[:BODY_LIMIT].decode("utf-8", "replace")
        return _SECRET_TEXT.sub(lambda m: m.group(1) + REDACTED, text) + ("..." if len(raw) > BODY_LIMIT else "")
    return {"bytes": len(raw), "contentType": content_type}


class Journal:
    def __init__(self, store, keep: int = 5000, enabled: bool = True):
        self.store, self.keep, self.enabled = store, keep, enabled
        self._seq = itertools.count()
        self._writes = 0

    def record(self, tenant: str, entry: dict) -> None:
        """Append one entry; trims the tenant's journal every few hundred writes."""
        if not self.enabled:
            return
        key = f"{time.time_ns():020d}-{os.getpid():07d}-{next(self._seq):09d}"
        self.store.put(tenant, _COLL, key, entry)
        self._writes += 1
        if self._writes % 500 == 0:
            self.store.trim(tenant, _COLL, self.keep)

    def entry(self, *, at: str, provider: str | None, operation: str | None, method: str, path: str,
              query: str, status: int, duration_ms: float, req_headers: dict, req_body: bytes,
              req_type: str | None, resp_body: bytes | None, resp_type: str | None, verdict: dict) -> dict:
        headers = {k: (REDACTED if k.lower() in _SECRET_HEADERS else v) for k, v in req_headers.items()}
        if resp_body is not None and len(resp_body) > BODY_LIMIT:
            body = {"truncated": True, "bytes": len(resp_body), "contentType": resp_type}
        else:
            body = _body(resp_body or b"", resp_type)
        return {"at": at, "provider": provider, "operation": operation, "method": method, "path": path,
                "query": query, "status": status, "durationMs": round(duration_ms, 3),
                "request": {"headers": headers, "body": _body(req_body, req_type)},
                "response": {"body": body}, "verdict": verdict}

    def read(self, tenant: str, limit: int = 100, operation: str | None = None) -> list[dict]:
        """Newest first."""
        entries = [v for _, v in self.store.list(tenant, _COLL, reverse=True, limit=None if operation else limit)]
        if operation:
            entries = [e for e in entries if e.get("operation") == operation][:limit]
        return entries
