"""Configuration: defaults, overridden by SANDBOX_* environment variables, overridden by an explicit dict."""
from __future__ import annotations

import os

DEFAULTS: dict = {
    "STORE": "sqlite:///sandbox.db",   # sqlite:///<path> | memory:// | redis://host:port/db
    "SEED": 0,                         # one seed for every generated id and dataset
    "SECRET_KEY": "",                  # root of every credential and signature; "" = random per store (kept in it)
    "JOB_DELAY": 3.0,                  # seconds on the sandbox clock before a job is done (0 = instant)
    "JOB_POLLS": 2,                    # ...or done on this poll, whichever comes first (0 = no poll rule)
    "DEBUG_VALIDATE_RESPONSES": False, # validate every response against its schema too
    "JOURNAL": True,                   # record every request/response per tenant
    "JOURNAL_KEEP": 5000,              # entries kept per tenant (oldest trimmed)
    "MAX_CONTENT_LENGTH": 1024 * 1024, # bodies over 1 MB get the provider's 413 envelope
    "OPEN_FINANCE_TOKEN_TTL": 86400,   # seconds (open_finance.md section 3: expiresIn honoured as seconds)
    "OPEN_FINANCE_STRICT_CONNECTIONS": False,  # open_finance.md section 5: no auto-provisioned connection
    "OPEN_FINANCE_PRODUCTION_ENABLED": False,  # open_finance.md s.6: real providers without includeFakeProviders
    "OPEN_FINANCE_BIGQUERY_EXPORT": False,  # open_finance.md s.4: connections deletable only at 90 min (else 423)
    "OPEN_FINANCE_PDF_LINK_TTL": 3600.0,  # validity of the report PDF's pre-signed url, seconds on the sandbox clock
    "FINLEAP_RECEIPT_TTL": 3600.0,     # finleap-products.md s.8: payment receipts readable 1 h (D-rcpt)
    "FINLEAP_CODE_TTL": 3600.0,        # finleap.md s.3: authorization code 1 h (an older doc said 5 min)
    "FINLEAP_ACCESS_TTL": 3600.0,      # access token 1 h
    "FINLEAP_REFRESH_TTL": 7776000.0,  # refresh token 90 days
    "FINLEAP_WIDGET_TTL": 3600.0,      # widget link validity (inferred)
    "FINLEAP_LEGACY_CODES": False,     # "O..." codes for the legacy python-figo SDK
    "FINLEAP_ONETIME_RETENTION": 0.0,  # finleap-products.md s.3: one-time data deleted N s after its flow (0 = keep)
    "FINLEAP_CONSENT_DAYS": 180.0,     # finleap-products.md s.3: an access's consent lasts ~180 days (D-ri)
    "FINLEAP_AUTOSYNC_HOURS": 6.0,     # finleap-products.md s.3: autosync <= 4x a day on /rest reads (0 = off)
    "CATALOGUE": "",                   # another catalogue.yaml (default: the vendored sandbox/spec/catalogue.yaml)
    "PUBLIC_URL": "",                  # base URL of handed-out links (empty: loopback Host, else 127.0.0.1)
    "ADMIN_TOKEN": "",                 # required on /_sandbox/* when set (and to bind a non-loopback address)
    "INSECURE_OPEN_CONTROL_API": False, # serve an unlocked control API on a non-loopback address anyway
    "FINPASS_AUTO_APPROVE_SECONDS": 0.0,  # finpass.md s.12: auto-approve AA/AA-BSA consents after N s (0 = off)
    "FINPASS_BSA_MAX_FILE_BYTES": 1048576,  # largest statement upload (finpass.md s.5; 413 file_too_large)
    "FINPASS_BSA_LINK_TTL": 900.0,     # validity of the pre-signed export links, seconds on the sandbox clock
    "TICKER": False,                   # background thread for time-driven jobs and webhook retries (serve sets it)
    "HOST": "127.0.0.1",
    "PORT": 8080,
    "WORKERS": 1,
}

_TYPES = {k: type(v) for k, v in DEFAULTS.items()}


def _parse(key: str, raw: str):
    kind = _TYPES.get(key, str)
    if kind is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind in (int, float):
        return kind(raw)
    return raw


def load_config(overrides: dict | None = None, environ: dict | None = None) -> dict:
    """Build the effective configuration: DEFAULTS < SANDBOX_<KEY> environment variables < ``overrides``."""
    env = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    for key, value in env.items():
        if key.startswith("SANDBOX_"):
            name = key[len("SANDBOX_"):]
            config[name] = _parse(name, value)
    config.update(overrides or {})
    return config
