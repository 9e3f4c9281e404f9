"""Every provider's ``init_app(app, sandbox)``: registers its blueprint, error renderer and job hooks."""
from .finleap import init_app as _finleap
from .open_finance import init_app as _open_finance

PROVIDERS = [_open_finance, _finleap]
