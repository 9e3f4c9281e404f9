"""Cassettes: one JSON file per proxied exchange, secrets replaced by stable placeholders, and their matching.

A cassette holds the operation id, the request (method, path, query, headers, body), the response (status, headers,
body) and the proxy's contract verdict. Secrets are found with the journal's rules (``core.journal.is_secret``:
whole key names in headers, JSON and form bodies, secret query parameters, ``?token=`` in URLs inside strings, the
token request's top-level ``code``) and each distinct value becomes ``redacted-<name>-<n>``; the same value gets the
same placeholder everywhere in a recording session, so the access token a token response returned and the
``Bearer`` header of later requests still agree. Replay treats a placeholder as "any value" when it matches.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, unquote_plus, urlencode

from ..core.journal import (_REQUEST_TOP_LEVEL, _URL_PARAM, REDACTED, SECRET_NAMES, SECRET_QUERY_NAMES, _norm,
                            is_secret, redact_text)

FORMAT = 1
PLACEHOLDER = re.compile(r"redacted-[a-z0-9]+-[0-9]+|" + re.escape(REDACTED))
GLOBAL_MIN = 8   # secret values at least this long are also replaced wherever else they appear (URLs, echoes)
HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer", "Trailers",
    "Transfer-Encoding", "Upgrade", "Proxy-Connection"))
_SCHEMES = re.compile(r"^(Bearer|Basic|Token|Digest|JWT)\s+(.+)$", re.I)


# --- bodies ------------------------------------------------------------------------------------------------------
def encode_body(raw: bytes, content_type: str | None) -> tuple[str, object]:
    """(format, value) of a body: ``json`` (parsed), ``form`` (list of pairs), ``text``, ``base64`` or ``empty``;
    readable and editable in a cassette, and turned back into bytes by ``decode_body``."""
    if not raw:
        return "empty", None
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if "json" in ctype or not ctype:
        try:
            return "json", json.loads(raw)
        except (ValueError, RecursionError):
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "base64", base64.b64encode(raw).decode("ascii")
    if ctype == "application/x-www-form-urlencoded":
        return "form", [list(p) for p in parse_qsl(text, keep_blank_values=True)]
    if not ctype or ctype.startswith("text/") or ctype.endswith(("+xml", "/xml", "/javascript", "+json", "/json")):
        return "text", text
    return "base64", base64.b64encode(raw).decode("ascii")


def decode_body(fmt: str, value) -> bytes:
    """The bytes ``encode_body`` turned into (format, value); JSON is written compactly, as the sandbox writes it."""
    if fmt == "json":
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if fmt == "form":
        return urlencode([tuple(p) for p in value]).encode("ascii")
    if fmt == "text":
        return str(value).encode("utf-8")
    if fmt == "base64":
        return base64.b64decode(value)
    return b""


# --- redaction -----------------------------------------------------------------------------------------------------
class Redactor:
    """Replaces secrets with stable placeholders: one value -> one ``redacted-<name>-<n>`` for the whole session.
    The values themselves stay in memory only; nothing that could reveal them (not even a hash) is written."""

    def __init__(self):
        self._placeholders: dict[str, str] = {}
        self._lock = threading.Lock()

    def placeholder(self, value, name: str) -> str:
        key = str(value)
        with self._lock:
            found = self._placeholders.get(key)
            if found is None:
                label = re.sub(r"[^a-z0-9]", "", _norm(name)) or "secret"
                found = self._placeholders[key] = f"redacted-{label}-{len(self._placeholders) + 1}"
            return found

    def _secret(self, value, name: str):
        if value in (None, "") or (isinstance(value, str) and PLACEHOLDER.fullmatch(value)):
            return value   # an empty secret is a useful debugging fact (as in the journal)
        if isinstance(value, (dict, list)):
            return self._walk(value)   # a structure under a secret name: redact its leaves by their own names
        return self.placeholder(value, name)

    # strings: secret query parameters in URLs (widget locations, pre-signed links)
    def _string(self, text: str) -> str:
        if "=" not in text:
            return text

        def sub(m):
            if is_secret(unquote_plus(m.group("name")), SECRET_QUERY_NAMES) and m.group("value") \
                    and not PLACEHOLDER.fullmatch(m.group("value")):
                secret = self.placeholder(unquote_plus(m.group("value")), m.group("name"))
                return f"{m.group('lead')}{m.group('name')}={secret}"
            return m.group(0)
        return _URL_PARAM.sub(sub, text)

    def _walk(self, value, extra: frozenset = frozenset()):
        if isinstance(value, dict):
            return {k: (self._secret(v, k) if is_secret(k) or _norm(k) in extra else self._walk(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, str):
            return self._string(value)
        return value

    def header(self, name: str, value: str) -> str:
        if not is_secret(name):
            return self._string(value)
        scheme = _SCHEMES.match(value or "")
        if scheme:   # keep the scheme readable: "Bearer redacted-accesstoken-1"
            kind, credentials = scheme.group(1), scheme.group(2)
            if kind.lower() == "basic":   # the password inside is a secret too, wherever else it shows up
                try:
                    _, _, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
                    if password:
                        self.placeholder(password, "password")
                except (ValueError, UnicodeDecodeError):
                    pass
            return f"{kind} {self._secret(credentials, 'accessToken' if kind.lower() == 'bearer' else name)}"
        return self._secret(value, name)

    def query(self, query: str) -> str:
        if not query:
            return ""
        pairs = parse_qsl(query, keep_blank_values=True)
        return urlencode([(k, self._secret(v, k) if is_secret(k, SECRET_QUERY_NAMES) else self._string(v))
                          for k, v in pairs], safe="/:,@")

    def body(self, fmt: str, value, request: bool):
        extra = _REQUEST_TOP_LEVEL if request else frozenset()
        if fmt == "json":
            return self._walk(value, extra) if isinstance(value, dict) else self._walk(value)
        if fmt == "form":
            return [[k, self._secret(v, k) if is_secret(k) or _norm(k) in extra else self._string(v)]
                    for k, v in value]
        if fmt == "text":
            return self._string(redact_text(value, extra))
        return value

    def everywhere(self, value):
        """Replace every known secret (long enough not to be a common word) wherever else it appears: a token
        echoed inside a URL, a client secret repeated in a text body."""
        with self._lock:
            known = sorted(((k, v) for k, v in self._placeholders.items() if len(k) >= GLOBAL_MIN),
                           key=lambda kv: -len(kv[0]))
        if not known:
            return value

        def fix(node):
            if isinstance(node, str):
                for secret, placeholder in known:
                    if secret in node:
                        node = node.replace(secret, placeholder)
                return node
            if isinstance(node, dict):
                return {k: fix(v) for k, v in node.items()}
            if isinstance(node, list):
                return [fix(v) for v in node]
            return node
        return fix(value)

    def exchange(self, cassette: dict) -> dict:
        """The cassette with every secret replaced (request and response, headers, query, bodies)."""
        req, resp = dict(cassette["request"]), dict(cassette["response"])
        req["headers"] = [[k, self.header(k, v)] for k, v in req["headers"]]
        req["query"] = self.query(req["query"])
        req["path"] = self._string(req["path"])
        req["body"] = self.body(req["bodyFormat"], req["body"], request=True)
        resp["headers"] = [[k, self.header(k, v)] for k, v in resp["headers"]]
        resp["body"] = self.body(resp["bodyFormat"], resp["body"], request=False)
        # binary bodies (a PDF, an uploaded file) are kept byte for byte: a substring replacement would corrupt them
        binary = {part: d["body"] for part, d in (("request", req), ("response", resp)) if d["bodyFormat"] == "base64"}
        out = self.everywhere(dict(cassette, request=req, response=resp))
        for part, body in binary.items():
            out[part]["body"] = body
        return out


# --- files -------------------------------------------------------------------------------------------------------
class CassetteWriter:
    """Writes one ``<session>-<seq>-<operation>.json`` per exchange into ``directory`` (file names sort in recorded
    order, also across sessions), each already redacted."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        now = time.time()   # microseconds: sessions started in the same second still sort in start order
        self.session = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z-" \
            + secrets.token_hex(3)
        self.redactor = Redactor()
        self._seq = 0
        self._lock = threading.Lock()

    def write(self, cassette: dict) -> Path:
        with self._lock:
            self._seq += 1
            seq = self._seq
        clean = self.redactor.exchange(dict(cassette, format=FORMAT, session=self.session, seq=seq))
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", clean.get("operation") or "unmatched")
        path = self.dir / f"{self.session}-{seq:05d}-{name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(clean, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path


class CassetteError(ValueError):
    """A cassette directory or file that cannot be used (named in the message)."""


def load_cassettes(directory: str | os.PathLike, provider: str | None = None) -> list[dict]:
    """Every cassette of ``directory`` (``*.json``, recorded order), each with its ``file`` name; only
    ``provider``'s when given. A file that is not a cassette raises CassetteError naming it."""
    root = Path(directory)
    if not root.is_dir():
        raise CassetteError(f"{root}: no such directory")
    found = []
    for path in sorted(root.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CassetteError(f"{path}: not valid JSON ({exc})") from None
        problem = _shape_problem(data)
        if problem:
            raise CassetteError(f"{path}: not a cassette ({problem})")
        if provider and data.get("provider") != provider:
            continue
        found.append(dict(data, file=path.name))
    return found


def _shape_problem(data) -> str | None:
    if not isinstance(data, dict):
        return "not an object"
    req, resp = data.get("request"), data.get("response")
    if not isinstance(req, dict) or not isinstance(resp, dict):
        return "needs 'request' and 'response' objects"
    for key in ("method", "path"):
        if not isinstance(req.get(key), str):
            return f"request.{key} must be a string"
    if not isinstance(resp.get("status"), int) or not 100 <= resp["status"] <= 599:
        return "response.status must be an HTTP status"
    for part, where in ((req, "request"), (resp, "response")):
        if part.get("bodyFormat", "empty") not in ("json", "form", "text", "base64", "empty"):
            return f"{where}.bodyFormat must be json, form, text, base64 or empty"
        if not isinstance(part.get("headers", []), list):
            return f"{where}.headers must be a list of [name, value] pairs"
    return None


# --- matching ------------------------------------------------------------------------------------------------------
def _string_matches(recorded: str, incoming: str) -> bool:
    """Equal, or equal once each placeholder in ``recorded`` stands for any text (a redacted secret)."""
    if recorded == incoming:
        return True
    if not PLACEHOLDER.search(recorded):
        return False
    pattern = "".join(".*?" if PLACEHOLDER.fullmatch(part) else re.escape(part)
                      for part in re.split(f"({PLACEHOLDER.pattern})", recorded))
    return re.fullmatch(pattern, incoming, re.S) is not None


def value_matches(recorded, incoming) -> bool:
    """Structural equality where a recorded placeholder matches any value (the secret the client sends)."""
    if isinstance(recorded, str) and PLACEHOLDER.fullmatch(recorded):
        return True
    if isinstance(recorded, str) and isinstance(incoming, str):
        return _string_matches(recorded, incoming)
    if isinstance(recorded, dict) and isinstance(incoming, dict):
        return recorded.keys() == incoming.keys() and all(value_matches(recorded[k], incoming[k]) for k in recorded)
    if isinstance(recorded, list) and isinstance(incoming, list):
        return len(recorded) == len(incoming) and all(value_matches(r, i) for r, i in zip(recorded, incoming))
    return recorded == incoming and type(recorded) is type(incoming)


def query_pairs(query: str) -> list[list[str]]:
    """A query string as sorted [name, value] pairs: parameter order does not distinguish requests."""
    return sorted([list(p) for p in parse_qsl(query or "", keep_blank_values=True)])


def body_matches(recorded_fmt: str, recorded, incoming_fmt: str, incoming) -> bool:
    if recorded_fmt == "form" and incoming_fmt == "form":
        return value_matches(sorted(recorded), sorted(incoming))
    if recorded_fmt != incoming_fmt:
        return False
    return value_matches(recorded, incoming)


__all__ = ["CassetteError", "CassetteWriter", "HOP_BY_HOP", "PLACEHOLDER", "Redactor", "SECRET_NAMES",
           "body_matches", "decode_body", "encode_body", "load_cassettes", "query_pairs", "value_matches"]
