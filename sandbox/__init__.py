"""provider-sandbox: a local, stateful stand-in for four financial-data provider APIs."""
from __future__ import annotations

from flask import Flask

from .config import load_config
from .core.context import VERSION, Sandbox

__version__ = VERSION


def create_app(config: dict | None = None, *, store=None, system_clock=None, webhook_sender=None) -> Flask:
    """The one place that wires things together: config, store, core services, control API and every provider.

    ``store``, ``system_clock`` and ``webhook_sender`` are injectable for tests (e.g. a MemoryStore, a fixed wall
    clock, a recorder instead of HTTP). ``TICKER`` (set by ``sandbox serve``) starts the background ticker.
    """
    from .core import admin, admin_flows, dashboard
    from .core.dispatch import install
    from .core.http import init_http
    from .core.operations import check_unmounted_schemas
    from .providers import PROVIDERS
    from .spec import catalogue

    cfg = load_config(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = int(cfg["MAX_CONTENT_LENGTH"])
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    app.json.compact = True
    sandbox = Sandbox(cfg, store=store, system_clock=system_clock, webhook_sender=webhook_sender)
    app.extensions["sandbox"] = sandbox
    init_http(app)
    app.register_blueprint(admin.bp)
    app.register_blueprint(admin_flows.bp)
    app.register_blueprint(dashboard.bp)
    doc = catalogue(cfg.get("CATALOGUE") or None)
    for decl in PROVIDERS:
        section = doc["providers"][decl.name]
        names = {op["id"].split(".", 1)[1] for op in section["operations"]}
        install(app, sandbox, decl, section, names)
    check_unmounted_schemas(sandbox.schemas.root, set(sandbox.providers), doc)

    @app.get("/")
    def index():
        return {"name": "provider-sandbox", "version": VERSION, "control": "/_sandbox/health",
                "providers": {n: s.prefix for n, s in sorted(sandbox.providers.items())}}

    if cfg.get("TICKER"):
        sandbox.start_ticker()
    return app
