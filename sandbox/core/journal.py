"""Request journal: every request and response per tenant with its contract verdict; secrets redacted.

One store write per request; bodies are truncated so the journal never dominates request cost, and each tenant
keeps its newest ``keep`` entries. Redaction matches whole key names (case, ``-`` and ``_`` ignored) from a list of
secret names, never substrings: ``code`` of an error, ``tokenType`` or ``standingOrders`` stay readable, while
``clientSecret``, ``password``, ``pin``, ``tan`` and tokens go. Query parameters (page tokens, codes, signatures)
are redacted in the journal and, through ``install_log_redaction``, in the server's access log.
"""
from __future__ import annotations

import atexit
import functools
import itertools
import json
import logging
import os
import re
import socket
import threading
import time
import weakref
from urllib.parse import parse_qsl, unquote_plus

from .clock import GLOBAL as _GLOBAL   # the sandbox's own tenant

_COLL = "journal"
REDACTED = "[redacted]"
BODY_LIMIT = 2048


_SEPARATORS = re.compile(r"[\s_-]")


@functools.lru_cache(maxsize=4096)
def _norm_str(name: str) -> str:
    return _SEPARATORS.sub("", name).lower()


def _norm(name) -> str:
    # the same few header and field names come back on every request: cached (half of an entry's cost before)
    return _norm_str(name if type(name) is str else str(name))


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


FLUSH_INTERVAL = 0.05   # seconds an entry may wait in a worker's buffer before its batch is written
MAX_PENDING = 2000      # entries buffered at most: beyond, the recording request writes the batch itself
BARRIER_TIMEOUT = 1.0   # seconds a journal read waits at most for other workers' buffers
# Markers of processes with unwritten entries live beside the entries (the journal collection of the sandbox's own
# tenant, which records no requests), so whatever ignores the journal ignores them too.
_MARKER = "pending|"
_QUIET = threading.local()   # set while a flush or a barrier reads the journal itself: no barrier inside a barrier


class Journal:
    """Append-only request journal in the store, each tenant trimmed to its newest ``keep`` entries.

    On a store that commits each write (SQLite, Redis: ``store.BATCHED_WRITES``) entries are written off the
    request path: ``record`` appends to a per-process buffer and a background thread writes it every
    FLUSH_INTERVAL in one transaction (issue 14: the journal's own commit was a quarter of a request's CPU).
    Nothing is lost on a clean exit (``flush`` at interpreter exit and before a store clear); a crash (SIGKILL,
    power) loses at most the last FLUSH_INTERVAL of entries, never more than MAX_PENDING. Reads see every entry
    recorded before they began, in every worker: a process with unwritten entries keeps a marker row in the
    store (written when its buffer becomes non-empty, removed in the batch's wake, so about two small writes per
    FLUSH_INTERVAL under load); a read of the journal writes its own buffer, then waits while another live
    process's marker is older than the read (at most about FLUSH_INTERVAL, never beyond BARRIER_TIMEOUT). On the
    memory store every ``record`` writes at once.
    """

    def __init__(self, store, keep: int = 5000, enabled: bool = True, batch: bool | None = None):
        self.store, self.keep, self.enabled = store, keep, enabled
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._since_trim: dict[str, int] = {}
        # trim a tenant after this many of its writes (per process): a small journal on every write, a large one
        # every 100, so a tenant holds at most keep + trim_every entries per writing process, and reads show keep
        self.trim_every = max(1, min(100, keep // 10))
        if batch is None:   # SANDBOX_JOURNAL_BATCH=0: every entry written by its request, as before
            batch = os.environ.get("SANDBOX_JOURNAL_BATCH", "1").strip().lower() not in ("0", "false", "no", "off")
        self.batched = bool(batch and getattr(store, "BATCHED_WRITES", False))
        self._pending: list[tuple[str, str, dict]] = []
        self._owner_pid = None          # the process whose entries are in _pending (a fork's child starts afresh)
        self._running = False           # a flusher thread serves _owner_pid
        self._marked = False            # our marker row says "unwritten entries since ..." (changed under _lock)
        self._failed_rounds = 0
        self._flush_lock = threading.RLock()   # one batch at a time, in key order (re-entered: a trim reads)
        if self.batched:
            _JOURNALS.add(self)
            hook = getattr(store, "on_read", None)
            if hook:
                hook(_COLL, self.sync)      # a read of the journal sees what every worker recorded before it
            hook = getattr(store, "on_clear", None)
            if hook:
                hook(self.flush)            # entries recorded before a reset never reappear after it

    def record(self, tenant: str, entry: dict) -> None:
        """Append one entry; every ``trim_every`` writes *of this tenant*, trim it to its newest ``keep``.

        (A process-wide counter trimmed only the tenant that happened to make the 500th write, and a racy
        ``+= 1`` under threads could skip the multiple altogether: one tenant kept 2,500 rows against 10.)"""
        if not self.enabled:
            return
        key = f"{time.time_ns():020d}-{os.getpid():07d}-{next(self._seq):09d}"
        if self.batched:
            pid = os.getpid()
            with self._lock:
                if self._owner_pid != pid:   # first entry of this process: an inherited buffer is the parent's
                    self._pending, self._owner_pid, self._running, self._marked = [], pid, False, False
                self._pending.append((tenant, key, entry))
                if not self._marked:         # before the response leaves: other workers' reads will wait for it
                    self._mark(int(key[:20]))
                full = len(self._pending) >= MAX_PENDING
                start, self._running = not self._running, True
            if start:   # the thread holds only a weak reference: a dropped Journal (tests) ends it
                threading.Thread(target=Journal._flush_loop, args=(weakref.ref(self), pid),
                                 name="sandbox-journal", daemon=True).start()
            if full:
                self.flush()   # back-pressure: a writer faster than the flusher pays for its own batch
            return
        self.store.put(tenant, _COLL, key, entry)
        if self._count(tenant):
            self.store.trim(tenant, _COLL, self.keep)

    def _count(self, tenant: str, n: int = 1) -> bool:
        """Count ``n`` writes of ``tenant``; True when it is due for a trim."""
        with self._lock:
            count = self._since_trim.get(tenant, 0) + n
            due = count >= self.trim_every
            self._since_trim[tenant] = 0 if due else count
            if len(self._since_trim) > 10_000:   # bounded memory with very many tenants
                self._since_trim.clear()
        return due

    def _marker_key(self) -> str:
        return f"{_MARKER}{socket.gethostname()}|{os.getpid()}|{id(self)}"

    def _mark(self, since_ns: int) -> None:
        """Record (under _lock) that this process has entries not yet in the store, the oldest from ``since_ns``."""
        self.store.put(_GLOBAL, _COLL, self._marker_key(), {"since": since_ns})
        self._marked = True

    def _settle_marker(self) -> None:
        """After a batch is written (under _lock): the marker follows the entries still buffered, or goes."""
        if self._pending:
            self._mark(int(self._pending[0][1][:20]))
        elif self._marked:
            self.store.delete(_GLOBAL, _COLL, self._marker_key())
            self._marked = False

    def sync(self) -> None:
        """Before a read of the journal: write this process's buffer, then wait (bounded) until every other live
        process has written the entries it recorded before now."""
        if not self.batched or getattr(_QUIET, "active", False):
            return   # a read made by a flush (a trim) or by this barrier needs no barrier
        started = time.time_ns()
        self.flush()
        deadline = time.monotonic() + BARRIER_TIMEOUT
        mine, host = self._marker_key(), socket.gethostname()
        while True:
            waiting = []
            _QUIET.active = True
            try:
                markers = self.store.list(_GLOBAL, _COLL, prefix=_MARKER)
            finally:
                _QUIET.active = False
            for key, marker in markers:
                since = marker.get("since")
                if key == mine or since is None or since >= started:
                    continue
                marker_host, pid = key[len(_MARKER):].split("|")[:2]
                if marker_host == host and not _alive(int(pid)):
                    self.store.delete(_GLOBAL, _COLL, key)   # a worker that died with entries: they are lost
                    continue
                waiting.append(key)
            if not waiting or time.monotonic() > deadline:
                return
            time.sleep(0.005)   # another worker's flusher writes within FLUSH_INTERVAL (wall time by design)

    def flush(self) -> int:
        """Write the buffered entries now (one transaction) and trim the tenants that are due; returns how many."""
        if not self.batched:
            return 0
        quiet = getattr(_QUIET, "active", False)
        _QUIET.active = True
        try:
            return self._flush()
        finally:
            _QUIET.active = quiet

    def _flush(self) -> int:
        with self._flush_lock:
            with self._lock:
                if self._owner_pid != os.getpid():
                    return 0   # nothing recorded in this process (a fork's inherited buffer is not ours)
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            rows = [(tenant, _COLL, key, entry) for tenant, key, entry in batch]
            try:
                self.store.put_many(rows)   # one transaction: all or nothing
                self._failed_rounds = 0
            except Exception:
                batch = self._one_by_one(batch)
                if batch:   # the store itself fails (busy, gone): keep the batch for the next round, bounded
                    with self._lock:
                        self._pending = (batch + self._pending)[-MAX_PENDING:]
                    raise
            with self._lock:
                self._settle_marker()
            counts: dict[str, int] = {}
            for tenant, _, _ in batch:
                counts[tenant] = counts.get(tenant, 0) + 1
            for tenant, n in counts.items():
                if self._count(tenant, n):
                    self.store.trim(tenant, _COLL, self.keep)
            return len(batch)

    def _one_by_one(self, batch: list) -> list:
        """After a failed batch: write its entries singly, dropping (and logging) any the store refuses on its own
        (e.g. text it cannot encode), so one bad entry never blocks the others. Returns the batch when every entry
        failed (the store is failing, not an entry) unless that has gone on for three rounds."""
        failed = []
        for entry in batch:
            try:
                self.store.put(entry[0], _COLL, entry[1], entry[2])
            except Exception:
                failed.append(entry)
        log = logging.getLogger("sandbox")
        if failed and len(failed) < len(batch):
            log.warning("journal: %d of %d entries could not be stored and were dropped", len(failed), len(batch))
            return []
        if failed:
            self._failed_rounds += 1
            if self._failed_rounds >= 3 or len(failed) == 1:
                log.warning("journal: %d entries dropped after the store refused them", len(failed))
                self._failed_rounds = 0
                return []
        return failed

    @staticmethod
    def _flush_loop(ref, pid: int) -> None:
        """Write the buffer every FLUSH_INTERVAL; end after a second with nothing to write (``record`` starts a
        new thread), when the journal is gone, or in a process the journal no longer belongs to."""
        idle = 0
        while True:
            time.sleep(FLUSH_INTERVAL)   # the batching interval itself (wall time by design, not sandbox time)
            journal = ref()
            if journal is None:
                return
            try:
                written = journal.flush()
            except Exception:   # the store was busy or failed: the batch stays buffered for the next round
                logging.getLogger("sandbox").exception("journal flush failed")
                written = 1
            with journal._lock:
                if journal._owner_pid != pid:
                    return
                idle = 0 if written or journal._pending else idle + 1
                if idle >= int(1 / FLUSH_INTERVAL):
                    journal._running = False
                    return
            del journal

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
        """Newest first; never more than ``keep`` entries; every entry recorded before the read, in any worker."""
        self.sync()
        limit = min(limit, self.keep) if self.keep > 0 else limit
        entries = [v for _, v in self.store.list(tenant, _COLL, reverse=True, limit=None if operation else limit)]
        if operation:
            entries = [e for e in entries if e.get("operation") == operation][:limit]
        return entries


_JOURNALS: "weakref.WeakSet[Journal]" = weakref.WeakSet()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process: alive
        return True
    return True


@atexit.register
def flush_all() -> None:
    """Write every batched journal's buffer of this process (at interpreter exit: a clean shutdown loses nothing)."""
    for journal in list(_JOURNALS):
        try:
            journal.flush()
        except Exception:   # exiting: the store may be closed; nothing better to do than log
            logging.getLogger("sandbox").exception("journal flush at exit failed")


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
