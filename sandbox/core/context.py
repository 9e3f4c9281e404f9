"""The Sandbox object: one store, clock, id generator, job engine, auth, journal and schema registry per app.

Services receive it explicitly (no process-wide singletons); views reach it through ``current_sandbox()``.
"""
from __future__ import annotations

from flask import current_app

from . import memo
from .auth import Auth
from .clock import GLOBAL, Clock
from .ids import IdGen
from .jobs import Jobs
from .journal import Journal
from .store import open_store
from .signing import SecretKey, Signer
from .flows import Flows
from .ratelimit import RateLimiter
from .runs import Runs
from .validation import SchemaRegistry
from .webhooks import Webhooks, http_sender

VERSION = "0.2.0"
TENANT_SEP = "/"   # nested tenants: "<client tenant>/<quoted sub-tenant>"
_SCHEMAS: SchemaRegistry | None = None


def schemas() -> SchemaRegistry:
    """The schema registry, loaded once per process (schemas are immutable files)."""
    global _SCHEMAS
    if _SCHEMAS is None:
        _SCHEMAS = SchemaRegistry()
    return _SCHEMAS


class _Seed:
    """The seed lives in the store so every worker agrees; ``--seed`` sets it at start-up."""

    def __init__(self, store, default: int):
        self.store, self.default = store, default

    def get(self) -> int:
        def load():
            found = self.store.get(GLOBAL, "config", "seed")
            return int(found["seed"]) if found else self.default
        return memo.cached("seed", load)

    def set(self, seed: int) -> None:
        self.store.put(GLOBAL, "config", "seed", {"seed": int(seed)})
        memo.forget("seed")


class Sandbox:
    def __init__(self, config: dict, store=None, system_clock=None, webhook_sender=None):
        self.config = config
        self.store = store or open_store(config["STORE"])
        self.seed = _Seed(self.store, int(config["SEED"]))
        # the root of every credential and signature: random per store (kept in it), or SECRET_KEY (core/signing.py)
        self.secret = SecretKey(self.store, config.get("SECRET_KEY") or None)
        self.clock = Clock(self.store, system_clock)
        self.ids = IdGen(self.store, self.seed.get, self.secret)
        self.jobs = Jobs(self.store, self.clock, self.ids, float(config["JOB_DELAY"]), int(config["JOB_POLLS"]))
        self.auth = Auth(self.store, self.clock, self.ids)
        self.journal = Journal(self.store, int(config["JOURNAL_KEEP"]), bool(config["JOURNAL"]))
        self.webhooks = Webhooks(self.store, self.clock, self.ids, webhook_sender or http_sender)
        self.signer = Signer(self.secret)
        self.flows = Flows(self.store, self.clock, self.ids, self.signer)
        self.runs = Runs(self.store, self.jobs, self.clock, self.ids)
        self.limits = RateLimiter(self.store, self.clock)
        self._tick_hooks: list = []   # providers' time-driven work (on_tick), run by every tick after the jobs
        self.schemas = schemas()
        self.providers: dict[str, object] = {}   # name -> ProviderSpec (filled by each provider's init_app)

    def collection(self, tenant: str, name: str, **options):
        """A core Collection of ``name`` in ``tenant`` (load-or-404, create, patch, delete, paged lists)."""
        from .collections import Collection
        return Collection(self.store, self.ids, self.clock, tenant, name, **options)

    def cursor_secret(self, tenant: str | None = None) -> bytes:
        """The MAC key for paging cursors (core/paging.py ``secret=``): from the secret key, not the seed."""
        return self.secret.derive("paging.cursor", tenant=tenant)

    def reset(self, tenant: str | None = None) -> None:
        """Forget all state (keeping the seed and the secret key), or one tenant's state and tokens. Either way the
        reset tenants get a new signing epoch: old page tokens and links die, and (random key) new credentials differ."""
        if tenant is None:
            seed, key = self.store.get(GLOBAL, "config", "seed"), self.secret.record()
            self.store.clear()
            if seed:
                self.store.put(GLOBAL, "config", "seed", seed)
            self.secret.restore(key)
            memo.forget("seed")
        else:
            # a client's tenant and every sub-tenant nested in it (finoOS TenantID, core/dispatch.py)
            nested = [t for t in self.store.tenants() if t.startswith(tenant + TENANT_SEP)]
            for name in [tenant, *nested]:
                self.store.clear(name)
                self.auth.forget_tenant(name)
                self.jobs.forget_tenant(name)
                self.clock.reset(name)
                self.secret.forget_tenant(name)

    def on_tick(self, fn) -> None:
        """Register a provider's time-driven work (``fn() -> int`` things done, e.g. finX autosyncs): run after the
        due job transitions by the background ticker and by every control-API tick or clock move."""
        self._tick_hooks.append(fn)

    def _run_tick_hooks(self) -> int:
        return sum(fn() for fn in self._tick_hooks)

    def tick(self) -> dict:
        """Apply due job transitions (their hooks may enqueue webhooks) and the providers' tick hooks, attempt due
        deliveries, purge dead tokens."""
        jobs = self.jobs.tick()
        due = self._run_tick_hooks()
        return {"jobs": jobs, "due": due, "webhooks": self.webhooks.deliver_due(), "purged": self.auth.purge_expired()}

    def start_ticker(self, interval: float = 0.5) -> None:
        """Background thread for served instances: time-driven jobs and webhook retries happen without polls."""
        import logging
        import threading

        def loop():
            rounds = 0
            while True:
                try:
                    self.jobs.tick()   # deliveries have their own worker: a hanging receiver never holds up jobs
                    self._run_tick_hooks()
                    if rounds % 20 == 0:
                        self.auth.purge_expired()   # expired tokens and codes, through the expiry index
                except Exception:  # keep ticking; the next round retries
                    logging.getLogger("sandbox").exception("ticker round failed")
                rounds += 1
                threading.Event().wait(interval)

        threading.Thread(target=loop, name="sandbox-ticker", daemon=True).start()
        self.webhooks.start_worker(interval)  # due deliveries, up to 4 at a time, outside requests


def current_sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]
