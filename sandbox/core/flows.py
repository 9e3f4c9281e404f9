"""Hosted flows: the pages real providers send an end user to (widgets, consent journeys, bank SCA, Banking UI).

One machine for all of them, generalised from finleap's widget (finleap.md s.8). A flow is a per-tenant record
(``<provider>.flows``) reached through a signed, expiring page token; a ``FlowDefinition`` declares its steps as
``step_<name>`` methods. Core does the rest: staleness (a post naming another flow or an old step never advances),
the cancel exit, attempt counters, finishing with ordered redirect parameters appended to the *registered* redirect
URI (a post can never choose the target), 303 redirects, iframe-friendly headers, and the control-API shortcut
``complete`` that ends a pending flow with a chosen outcome (as Plaid's sandbox lets tests skip Link).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import make_response, redirect

from .clock import from_timestamp, isoformat, parse_instant
from .errors import BadRequest, Conflict, NotFound
from .signing import InvalidToken

PENDING = "PENDING"
STATUS = {"success": "SUCCEEDED", "cancel": "CANCELLED", "error": "FAILED"}   # outcome -> final status
OUTCOMES = tuple(STATUS)
_CORE_KEYS = frozenset({"id", "provider", "kind", "purpose", "status", "step", "redirect_uri", "redirects", "state",
                        "created_at", "expires_at", "attempts", "outcome", "reason", "redirect_url", "finished_at"})


def callback_url(redirect_uri: str, params: list[tuple[str, str]]) -> str:
    """``redirect_uri`` with ``params`` appended in order after the URI's own query (finleap.md s.5: code first)."""
    parts = urlsplit(redirect_uri)
    query = urlencode([(k, "" if v is None else str(v)) for k, v in params])
    if not query:
        return redirect_uri
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


def collection(provider: str) -> str:
    """The store collection holding ``provider``'s flows (per tenant)."""
    return f"{provider}.flows"


class FlowError(Exception):
    """The page cannot be shown for this token: rendered as the provider's error page (400), never a redirect."""

    reason = "expired"


class FlowExpired(FlowError):
    """Malformed, forged, tampered or expired token, a token for another flow, or a flow that no longer exists."""

    reason = "expired"


class FlowUsed(FlowError):
    """The flow already ended (success, cancel or error): a page token works once."""

    reason = "used"


@dataclass(frozen=True)
class Next:
    """What a step decided: move to ``step``, stay (``error``: a message key for the page) or finish."""

    step: str | None = None
    error: str | None = None
    outcome: str | None = None          # "success" | "cancel" | "error": the flow ends
    result: dict = field(default_factory=dict)   # outcome values for the redirect (e.g. code), "reason" for errors
    url: str | None = None              # set by core once the flow ended: where the user goes (None: done page)

    @classmethod
    def goto(cls, step: str) -> "Next":
        return cls(step=step)

    @classmethod
    def stay(cls, error: str | None = None) -> "Next":
        return cls(error=error)

    @classmethod
    def finish(cls, outcome: str, **result) -> "Next":
        if outcome not in STATUS:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        return cls(outcome=outcome, result=result)

    @property
    def finished(self) -> bool:
        return self.outcome is not None


class FlowDefinition:
    """A kind of hosted flow. Subclasses declare ``step_<name>(tenant, flow, form) -> Next`` and the pages.

    Class attributes name the form protocol: ``id_field`` (hidden field naming the flow), ``step_field`` (hidden
    field naming the step; None for one-step pages), ``cancel_field`` (the cancel button), ``list_fields`` (fields
    read as lists, e.g. checkboxes). ``frame_ancestors``: None sends no CSP (any parent may frame the page).
    """

    id_field = "flow_id"
    step_field: str | None = "step"
    cancel_field: str | None = "cancel"
    list_fields: tuple[str, ...] = ()
    max_attempts = 3
    frame_ancestors: str | None = None

    def __init__(self, flows: "Flows"):
        self.flows = flows

    # --- the pages (override) ---------------------------------------------------------------------------------
    def render(self, ctx, tenant: str, flow: dict, error: str | None):
        """The page of the flow's current step (a str or a Response; status 200)."""
        raise NotImplementedError

    def render_done(self, ctx, tenant: str, flow: dict):
        """The page shown when a flow ended without a redirect target (Open Finance and Finpass without one)."""
        return f"<!doctype html><title>done</title><p id=\"result\">{flow['status']}</p>"

    def finished(self, ctx, tenant: str, flow: dict, url: str | None):
        """The response once the flow ended: 303 to ``url``, else the done page (override for postMessage)."""
        if url:
            return redirect(url, code=303)
        return self.render_done(ctx, tenant, flow)

    # --- outcomes ---------------------------------------------------------------------------------------------
    def cancel(self, tenant: str, flow: dict, form: dict) -> Next:
        """The cancel button: ends the flow (override to undo a side effect first, or to refuse with a stay)."""
        return Next.finish("cancel")

    def redirect_params(self, flow: dict, outcome: str, result: dict) -> list[tuple[str, str]]:
        """Ordered query parameters for the redirect after ``outcome`` (override: each provider has its own)."""
        params = [(k, v) for k, v in result.items() if k != "reason"]
        if flow.get("state") is not None:
            params.append(("state", flow["state"]))
        return params

    def succeed(self, tenant: str, flow: dict, options: dict) -> dict:
        """Control API: do what a successful run through the steps does; return the result (e.g. {"code": ...}).

        Raise BadRequest for options the flow cannot honour."""
        raise BadRequest(f"{flow['provider']} {flow['kind']} flows cannot be completed with success")

    def fail_reason(self, tenant: str, flow: dict, options: dict) -> str:
        """Control API: the reason recorded for an ``error`` outcome (override to validate ``options["reason"]``)."""
        return str(options.get("reason") or "error")

    def complete(self, tenant: str, flow: dict, outcome: str, options: dict) -> str | None:
        """Control-API shortcut: end a pending flow with ``outcome``; returns the redirect URL a user would reach."""
        if outcome == "success":
            result = self.succeed(tenant, flow, options)
        elif outcome == "error":
            result = {"reason": self.fail_reason(tenant, flow, options)}
        elif outcome == "cancel":
            result = {}
        else:
            raise BadRequest(f"outcome must be one of {', '.join(OUTCOMES)}")
        return self.end(tenant, flow, outcome, **result)

    def end(self, tenant: str, flow: dict, outcome: str, **result) -> str | None:
        """Finish ``flow``: the one path both form posts and the control API take, so both give the same URL."""
        return self.flows.finish(tenant, flow, outcome, self.redirect_params(flow, outcome, result),
                                 reason=result.get("reason"))

    # --- helpers for steps ------------------------------------------------------------------------------------
    def attempt(self, flow: dict, counter: str = "default") -> bool:
        """Count one failed attempt on ``counter``; True when the flow has used up ``max_attempts``."""
        return self.flows.count_attempt(flow, counter) >= self.max_attempts

    def attempts_left(self, flow: dict, counter: str = "default") -> int:
        return self.max_attempts - flow["attempts"].get(counter, 0)


class Flows:
    """Flow records per tenant, their page tokens, and the registry of definitions by (provider, kind)."""

    def __init__(self, store, clock, ids, signer):
        self.store, self.clock, self.ids, self.signer = store, clock, ids, signer
        self._definitions: dict[tuple[str, str], FlowDefinition] = {}

    # --- registry ---------------------------------------------------------------------------------------------
    def register(self, provider: str, kind: str, definition: FlowDefinition) -> None:
        """Make ``definition`` serve flows of (provider, kind); core finds it without importing the provider."""
        self._definitions[(provider, kind)] = definition

    def definition(self, provider: str, kind: str) -> FlowDefinition:
        try:
            return self._definitions[(provider, kind)]
        except KeyError:
            raise LookupError(f"no flow definition registered for ({provider!r}, {kind!r})") from None

    def providers(self) -> list[str]:
        return sorted({p for p, _ in self._definitions})

    # --- records and tokens -----------------------------------------------------------------------------------
    def create(self, tenant: str, provider: str, kind: str, *, redirect_uri: str | None, state: str | None = None,
               data: dict, ttl: float, first_step: str, purpose: str, flow_id: str | None = None,
               redirects: dict | None = None, claims: dict | None = None) -> tuple[dict, str]:
        """Store a PENDING flow and sign its page token (expires ``ttl`` s from now on the tenant's clock).

        ``redirects`` maps an outcome to its own registered target (finoOS errorURL/exitURL); ``flow_id`` reuses a
        resource id (a sync, a connection); ``data`` holds the provider's fields, kept at the top level."""
        definition = self.definition(provider, kind)   # fail loudly: a flow nobody can serve is a bug
        clash = _CORE_KEYS & set(data)
        if clash:
            raise ValueError(f"flow data must not set core fields {sorted(clash)}")
        if redirects and set(redirects) - set(STATUS):
            raise ValueError(f"redirects keys must be outcomes {OUTCOMES}")
        if not hasattr(definition, f"step_{first_step}"):
            raise ValueError(f"{type(definition).__name__} has no step {first_step!r}")
        now = self.clock.now(tenant)
        flow_id = flow_id or self.ids.uuid4(tenant, f"{provider}.flow")
        exp = int(now.timestamp() + ttl)   # whole seconds, as JWT ``exp``: the record and the token agree
        flow = {"id": flow_id, "provider": provider, "kind": kind, "purpose": purpose, "status": PENDING,
                "step": first_step, "redirect_uri": redirect_uri, "redirects": dict(redirects or {}), "state": state,
                "created_at": isoformat(now), "expires_at": isoformat(from_timestamp(exp)),
                "attempts": {}, "outcome": None, "reason": None, "redirect_url": None, "finished_at": None, **data}
        self.store.put(tenant, collection(provider), flow_id, flow)
        token = self.signer.encode({**(claims or {}), "flow_id": flow_id, "tenant": tenant, "provider": provider,
                                    "kind": kind, "exp": exp}, purpose)
        return flow, token

    def token(self, tenant: str, flow: dict, claims: dict | None = None) -> str:
        """A fresh page token for an existing flow (same expiry), e.g. to show its link again."""
        exp = int(parse_instant(flow["expires_at"]).timestamp())
        return self.signer.encode({**(claims or {}), "flow_id": flow["id"], "tenant": tenant,
                                   "provider": flow["provider"], "kind": flow["kind"], "exp": exp}, flow["purpose"])

    def open(self, token: str | None, purpose: str, flow_id: str | None = None) -> tuple[str, dict]:
        """(tenant, flow) for a genuine, unexpired token of a PENDING flow; ``flow_id``: the id the path names.

        FlowExpired: forged, tampered, expired (dead at ``exp`` exactly) or unknown; FlowUsed: the flow ended."""
        try:
            claims = self.signer.decode(token, purpose)
            tenant, provider, fid = claims["tenant"], claims["provider"], claims["flow_id"]
            self.signer.decode(token, purpose, now=self.clock.now(tenant))
            flow = self.store.get(tenant, collection(provider), fid)
        except (InvalidToken, KeyError, TypeError, ValueError):
            raise FlowExpired() from None
        if flow is None or (flow_id is not None and flow_id != fid):
            raise FlowExpired()   # gone after a reset, or a token for another resource than the path names
        if flow["status"] != PENDING:
            raise FlowUsed()
        return tenant, flow

    def get(self, tenant: str, provider: str, flow_id: str) -> dict:
        """Load-or-404 a flow of ``provider`` in ``tenant``."""
        found = self.store.get(tenant, collection(provider), flow_id)
        if found is None:
            raise NotFound("Flow not found.")
        return found

    def save(self, tenant: str, flow: dict) -> None:
        self.store.put(tenant, collection(flow["provider"]), flow["id"], flow)

    def list(self, tenant: str, provider: str) -> list[dict]:
        return [f for _, f in self.store.list(tenant, collection(provider))]

    def expired(self, tenant: str, flow: dict) -> bool:
        """True when the flow's page token is dead (the flow can no longer be finished by its user)."""
        return self.clock.now(tenant) >= parse_instant(flow["expires_at"])

    def status(self, tenant: str, flow: dict) -> str:
        """The stored status, or EXPIRED for a pending flow whose token is dead."""
        return "EXPIRED" if flow["status"] == PENDING and self.expired(tenant, flow) else flow["status"]

    def count_attempt(self, flow: dict, counter: str) -> int:
        """One more failed attempt on ``counter`` (saved with the flow by the caller); returns the new count."""
        flow["attempts"][counter] = flow["attempts"].get(counter, 0) + 1
        return flow["attempts"][counter]

    def target(self, flow: dict, outcome: str) -> str | None:
        """The registered redirect target for ``outcome`` (never anything a form post sent)."""
        return flow["redirects"].get(outcome) or flow["redirect_uri"]

    def finish(self, tenant: str, flow: dict, outcome: str, params: list[tuple[str, str]], *,
               reason: str | None = None) -> str | None:
        """End ``flow`` with ``outcome``; returns the redirect URL (None without a target). Exactly once: a
        concurrent finish of the same flow raises FlowUsed."""
        if outcome not in STATUS:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        target = self.target(flow, outcome)
        url = callback_url(target, params) if target else None
        flow.update(status=STATUS[outcome], step="done", outcome=outcome, reason=reason, redirect_url=url,
                    finished_at=isoformat(self.clock.now(tenant)))

        def write(current):
            if current is None or current["status"] != PENDING:
                raise FlowUsed()
            return flow
        self.store.update(tenant, collection(flow["provider"]), flow["id"], write)
        return url

    # --- serving a page ---------------------------------------------------------------------------------------
    def submit(self, definition: FlowDefinition, tenant: str, flow: dict, form: dict) -> Next:
        """Apply one form post: stale posts stay (error "stale"), cancel exits, else the current step decides."""
        if form.get(definition.id_field) != flow["id"]:
            return Next.stay("stale")   # a post made for another flow never advances this one
        if definition.cancel_field and definition.cancel_field in form:
            # a cancel from an older rendering of the same flow still means cancel (finleap.md s.8)
            return self._apply(definition, tenant, flow, definition.cancel(tenant, flow, form))
        if definition.step_field and form.get(definition.step_field) != flow["step"]:
            return Next.stay("stale")
        handler = getattr(definition, f"step_{flow['step']}")
        return self._apply(definition, tenant, flow, handler(tenant, flow, form))

    def _apply(self, definition: FlowDefinition, tenant: str, flow: dict, nxt: Next) -> Next:
        if nxt.finished:
            url = definition.end(tenant, flow, nxt.outcome, **nxt.result)
            return Next(outcome=nxt.outcome, result=nxt.result, url=url)
        if nxt.step:
            if not hasattr(definition, f"step_{nxt.step}"):
                raise ValueError(f"{type(definition).__name__} has no step {nxt.step!r}")
            flow["step"] = nxt.step
        self.save(tenant, flow)   # also after a stay: the step may have counted an attempt
        return nxt

    def serve(self, ctx, purpose: str, *, token: str | None, error_page, flow_id: str | None = None):
        """The whole page handler: open the token, apply a POST, render or redirect, iframe-friendly headers.

        ``error_page(reason)`` renders "expired" or "used" (sent with status 400, no redirect)."""
        try:
            tenant, flow = self.open(token, purpose, flow_id)
        except FlowError as exc:
            return frame_friendly(make_response(error_page(exc.reason), 400))
        ctx.tenant = tenant
        definition = self.definition(flow["provider"], flow["kind"])
        error = None
        if ctx.request.method == "POST":
            form = ctx.request.form.to_dict()
            for name in definition.list_fields:
                form[name] = ctx.request.form.getlist(name)
            try:
                nxt = self.submit(definition, tenant, flow, form)
            except FlowUsed as exc:   # a concurrent post finished it first
                return frame_friendly(make_response(error_page(exc.reason), 400), definition.frame_ancestors)
            if nxt.finished:
                return frame_friendly(make_response(definition.finished(ctx, tenant, flow, nxt.url)),
                                      definition.frame_ancestors)
            error = nxt.error
        return frame_friendly(make_response(definition.render(ctx, tenant, flow, error)), definition.frame_ancestors)

    # --- control API --------------------------------------------------------------------------------------------
    def find(self, flow_id: str, tenant: str | None = None, provider: str | None = None) -> tuple[str, dict]:
        """(tenant, flow) for ``flow_id``, looked up in ``tenant`` (else every tenant) and registered providers."""
        providers = [provider] if provider else self.providers()
        tenants = [tenant] if tenant else [t for t in self.store.tenants() if not t.startswith("_")]
        for t in tenants:
            for p in providers:
                found = self.store.get(t, collection(p), flow_id)
                if found is not None:
                    return t, found
        raise NotFound(f"flow {flow_id} not found" + (f" in tenant {tenant}" if tenant else ""))

    def complete(self, flow_id: str, outcome: str, options: dict, tenant: str | None = None,
                 provider: str | None = None) -> tuple[str, dict, str | None]:
        """Control API: finish a pending flow with ``outcome`` -> (tenant, flow, redirect URL)."""
        if outcome not in STATUS:
            raise BadRequest(f"outcome must be one of {', '.join(OUTCOMES)}")
        tenant, flow = self.find(flow_id, tenant, provider)
        if flow["status"] != PENDING:
            raise Conflict(f"flow {flow_id} already ended ({flow['status']})")
        if self.expired(tenant, flow):
            raise Conflict(f"flow {flow_id} expired at {flow['expires_at']}")
        definition = self.definition(flow["provider"], flow["kind"])
        try:
            url = definition.complete(tenant, flow, outcome, options)
        except FlowUsed:
            raise Conflict(f"flow {flow_id} already ended") from None
        return tenant, flow, url


def frame_friendly(response, frame_ancestors: str | None = None):
    """Hosted pages work inside an iframe or popup (finleap.md s.8): never X-Frame-Options; CSP only if asked.

    No CSP is the most permissive choice: ``frame-ancestors *`` would still refuse parents with opaque origins
    (sandboxed or data: frames). Pages carry one-time state, so they are not cached."""
    response.headers.pop("X-Frame-Options", None)
    if frame_ancestors:
        response.headers["Content-Security-Policy"] = f"frame-ancestors {frame_ancestors}"
    response.headers["Cache-Control"] = "no-store"
    return response


__all__ = ["FlowDefinition", "FlowError", "FlowExpired", "FlowUsed", "Flows", "Next", "OUTCOMES", "PENDING",
           "callback_url", "collection", "frame_friendly"]
