"""Open Finance (open-finance.ai, Israel): token, financial-report jobs (seed tier). Spec: open_finance.md."""
from __future__ import annotations

from ...core.http import ProviderSpec, build_blueprint, serve_openapi
from ...spec import statuses
from . import errors
from .data import SCENARIOS
from .routes import PAGES, ROUTES, Views
from .service import OpenFinanceService

NAME, PREFIX = "open_finance", "/open-finance"


def init_app(app, sandbox) -> None:
    spec = ProviderSpec(NAME, PREFIX, errors.render, scenarios=SCENARIOS, routes={**ROUTES, **PAGES})
    views = Views(OpenFinanceService(sandbox))
    bp = build_blueprint(spec, views)
    # POST /financial-report/ with an empty customerId -> 400 "Missing customerId" (guide), not a routing 404
    bp.add_url_rule("/financial-report/", endpoint="create_financial_report__empty",
                    view_func=views.create_financial_report, methods=["POST"], defaults={"customerId": ""})
    serve_openapi(bp, spec, "Open Finance (provider-sandbox)", statuses(NAME),
                  security={"bearer": {"type": "http", "scheme": "bearer"}},
                  op_security={op: [] if op == "create_token" else [{"bearer": []}] for op in ROUTES})
    app.register_blueprint(bp)
    sandbox.providers[NAME] = spec
