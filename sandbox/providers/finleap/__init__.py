"""finleap connect finX / nrich: widget links, hosted widget, tokens, reports, account data, notifications,
syncs. Spec: finleap.md."""
from __future__ import annotations

from pathlib import Path

from ...core.http import ProviderSpec, build_blueprint, serve_openapi
from ...spec import statuses
from . import errors
from .data import SCENARIOS
from .routes import PAGES, ROUTES, Views
from .service import FinleapService

NAME, PREFIX = "finleap", "/finleap"
BASIC = {"basic": []}
BASIC_OPS = {"create_income_report_link", "create_account_verification_link", "create_token"}


def init_app(app, sandbox) -> None:
    service = FinleapService(sandbox)
    spec = ProviderSpec(NAME, PREFIX, errors.render, scenarios=SCENARIOS, routes={**ROUTES, **PAGES},
                        fire_webhook=service.fire_webhook)
    bp = build_blueprint(spec, Views(service), pages_dir=str(Path(__file__).with_name("pages")))
    serve_openapi(bp, spec, "finleap connect finX (provider-sandbox)", statuses(NAME),
                  security={"basic": {"type": "http", "scheme": "basic"}, "bearer": {"type": "http", "scheme": "bearer"}},
                  op_security={op: [BASIC] if op in BASIC_OPS else [{"bearer": []}] for op in ROUTES})
    app.register_blueprint(bp)
    sandbox.providers[NAME] = spec
