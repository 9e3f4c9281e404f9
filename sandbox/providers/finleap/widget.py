"""The hosted finX widget (page ``finleap.widget``, finleap.md section 8): bank -> login -> SCA method -> OTP ->
account selection -> redirect back with ``code`` (first), ``state``, ``success``, ``flow_id``.

Server-rendered and completable by plain form posts: every post names its flow and step, and only the flow the
signed widget token names can be advanced. Redirects only ever go to the flow's registered ``redirect_uri``.
"""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from ...core.signing import InvalidToken
from ...ledger.models import Account
from . import data

TEXT = {
    "de": {"title": "Konto verbinden", "bank": "Bank auswählen", "login": "Anmeldung bei", "username": "Benutzername",
           "password": "PIN / Passwort", "sca": "Sicherheitsverfahren wählen", "otp": "TAN eingeben",
           "otp_hint": "Wir haben eine TAN an Ihr Telefon gesendet.", "accounts": "Konten auswählen",
           "continue": "Weiter", "cancel": "Abbrechen", "wrong_credentials": "Benutzername oder PIN ist falsch.",
           "wrong_otp": "Die TAN ist falsch.", "attempts_left": "Verbleibende Versuche", "choose_account":
           "Bitte wählen Sie mindestens ein Konto.", "stale": "Dieser Schritt ist nicht mehr aktuell.",
           "search": "Bank suchen", "done": "Fertig", "expired": "Dieser Link ist ungültig oder abgelaufen.",
           "used": "Dieser Link wurde bereits verwendet."},
    "en": {"title": "Connect your account", "bank": "Select your bank", "login": "Log in to", "username": "Username",
           "password": "PIN / password", "sca": "Choose a security method", "otp": "Enter your one-time password",
           "otp_hint": "We sent a one-time password to your phone.", "accounts": "Select accounts",
           "continue": "Continue", "cancel": "Cancel", "wrong_credentials": "Wrong username or PIN.",
           "wrong_otp": "Wrong one-time password.", "attempts_left": "Attempts left", "choose_account":
           "Please choose at least one account.", "stale": "This step is no longer current.",
           "search": "Search bank", "done": "Done", "expired": "This link is invalid or has expired.",
           "used": "This link has already been used."},
}
TEXT["es"] = {**TEXT["en"], "title": "Conectar cuenta", "continue": "Continuar", "cancel": "Cancelar"}
TEXT["fr"] = {**TEXT["en"], "title": "Connecter votre compte", "continue": "Continuer", "cancel": "Annuler"}
TEXT["ar"] = {**TEXT["en"], "title": "ربط الحساب", "continue": "متابعة", "cancel": "إلغاء"}


def callback_url(redirect_uri: str, params: list[tuple[str, str]]) -> str:
    """``redirect_uri`` with ``params`` appended in order (``code`` first when present, finleap.md s.5)."""
    parts = urlsplit(redirect_uri)
    query = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


class WidgetError(Exception):
    """Shown as an error page (no redirect): invalid, forged or expired widget token, or a finished flow."""


class Widget:
    def __init__(self, service):
        self.service = service
        self.sb = service.sb

    def open(self, token: str | None) -> tuple[str, dict]:
        """(tenant, flow) for a genuine, unexpired widget token."""
        try:
            claims = self.sb.signer.decode(token, "finleap.widget")
            tenant = claims["tenant"]
            self.sb.signer.decode(token, "finleap.widget", now=self.sb.clock.now(tenant))
            flow = self.service.flow(tenant, claims["flow_id"])
        except (InvalidToken, KeyError, TypeError):
            raise WidgetError("expired") from None
        except Exception as exc:  # unknown flow (e.g. after a reset)
            raise WidgetError("expired") from exc
        if flow["status"] != "PENDING":
            raise WidgetError("used")
        return tenant, flow

    def context(self, tenant: str, flow: dict, error: str | None = None) -> dict:
        """Everything the template needs for the flow's current step."""
        lang = flow["language"] if flow["language"] in TEXT else "de"
        ctx = {"flow": flow, "t": TEXT[lang], "lang": lang, "rtl": lang == "ar", "error": error,
               "step": flow["step"], "banks": data.selectable_banks(),
               "bank": next((b for b in data.selectable_banks() if b["id"] == flow.get("bank_id")), None),
               "sca_methods": data.SCA_METHODS, "attempts_left": data.MAX_LOGIN_ATTEMPTS - flow["login_attempts"],
               "accounts": [], "multi": flow["allow_multi_selection"]}
        if flow["step"] == "accounts":
            ctx["accounts"] = [self._account_choice(a) for a in self._candidates(tenant, flow)]
        return ctx

    def _candidates(self, tenant: str, flow: dict) -> list[Account]:
        ledger = self.service._ledger(self.sb.seed.get(), flow, self.sb.clock.now(tenant).date())
        accounts = data.apply_preset_ibans(data.widget_accounts(ledger), flow["preset_accounts"])
        if flow["account_types"]:
            accounts = [a for a in accounts if data.ACCOUNT_TYPES[a.kind] in flow["account_types"]] or accounts[:1]
        return accounts

    @staticmethod
    def _account_choice(a: Account) -> dict:
        return {"id": a.id, "name": a.name, "type": data.ACCOUNT_TYPES[a.kind], "iban": a.iban or a.number,
                "balance": f"{a.balance:,.2f} {a.currency}"}

    def submit(self, tenant: str, flow: dict, form: dict) -> tuple[str | None, str | None]:
        """Apply one form post. Returns (redirect URL, None) when the flow ended, else (None, error message key)."""
        if form.get("flow_id") != flow["id"]:
            return None, "stale"  # a post made for another flow never advances this one
        if "cancel" in form:
            return self._finish(tenant, flow, "CANCELLED"), None
        if form.get("step") != flow["step"]:
            return None, "stale"
        handler = getattr(self, f"_step_{flow['step']}")
        return handler(tenant, flow, form)

    def _step_bank(self, tenant, flow, form):
        if form.get("bank_id") not in {b["id"] for b in data.selectable_banks()}:
            return None, "stale"
        flow.update(bank_id=form["bank_id"], step="login")
        self.service.save_flow(tenant, flow)
        return None, None

    def _step_login(self, tenant, flow, form):
        username, password = form.get("username", ""), form.get("password", "")
        if username == "bank_error":
            return self._finish(tenant, flow, "FAILED", reason="bank_error"), None
        known = username in data.USERNAME_SCENARIOS
        if known and password == data.MOCK_PASSWORD:
            flow.update(username=username, step="sca")
            self.service.save_flow(tenant, flow)
            return None, None
        flow["login_attempts"] += 1
        if flow["login_attempts"] >= data.MAX_LOGIN_ATTEMPTS:
            return self._finish(tenant, flow, "FAILED", reason="wrong_credentials"), None
        self.service.save_flow(tenant, flow)
        return None, "wrong_credentials"

    def _step_sca(self, tenant, flow, form):
        if form.get("sca_method") not in data.SCA_METHODS:
            return None, "stale"
        flow.update(sca_method=form["sca_method"], step="otp")
        self.service.save_flow(tenant, flow)
        return None, None

    def _step_otp(self, tenant, flow, form):
        if form.get("otp", "").strip() != data.MOCK_OTP:
            flow["login_attempts"] += 1
            if flow["login_attempts"] >= data.MAX_LOGIN_ATTEMPTS:
                return self._finish(tenant, flow, "FAILED", reason="wrong_otp"), None
            self.service.save_flow(tenant, flow)
            return None, "wrong_otp"
        flow["step"] = "accounts"
        self.service.save_flow(tenant, flow)
        return None, None

    def _step_accounts(self, tenant, flow, form):
        offered = {a.id for a in self._candidates(tenant, flow)}
        chosen = [a for a in form.get("accounts", []) if a in offered]
        if not chosen:
            return None, "choose_account"
        if not flow["allow_multi_selection"]:
            chosen = chosen[:1]
        code = self.service.complete_flow(tenant, flow, chosen)
        return callback_url(flow["redirect_uri"], [("code", code), ("state", flow["state"] or ""),
                                                   ("success", "true"), ("flow_id", flow["id"])]), None

    def _finish(self, tenant, flow, status: str, reason: str | None = None) -> str:
        flow.update(status=status, step="done", failure=reason)
        self.service.save_flow(tenant, flow)
        params = [("state", flow["state"] or ""), ("success", "false")]
        if status == "CANCELLED":
            params.append(("cancel", "true"))  # only on a real cancel, not on other errors (guide)
        params.append(("flow_id", flow["id"]))
        return callback_url(flow["redirect_uri"], params)

