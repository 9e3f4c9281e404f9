"""The hosted finX widget (page ``finleap.widget``, finleap.md section 8): bank -> login -> SCA method -> OTP ->
account selection -> redirect back with ``code`` (first), ``state``, ``success``, ``flow_id``.

Server-rendered and completable by plain form posts: every post names its flow and step, and only the flow the
signed widget token names can be advanced. Redirects only ever go to the flow's registered ``redirect_uri``.
"""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from ...core.errors import NotFound
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
TEXT["es"] = {"title": "Conectar cuenta", "bank": "Seleccione su banco", "login": "Iniciar sesión en",
              "username": "Usuario", "password": "PIN / contraseña", "sca": "Elija un método de seguridad",
              "otp": "Introduzca la contraseña de un solo uso", "otp_hint": "Le hemos enviado una contraseña a su teléfono.",
              "accounts": "Seleccione las cuentas", "continue": "Continuar", "cancel": "Cancelar",
              "wrong_credentials": "Usuario o PIN incorrecto.", "wrong_otp": "Contraseña de un solo uso incorrecta.",
              "attempts_left": "Intentos restantes", "choose_account": "Elija al menos una cuenta.",
              "stale": "Este paso ya no está vigente.", "search": "Buscar banco", "done": "Listo",
              "expired": "Este enlace no es válido o ha caducado.", "used": "Este enlace ya se ha utilizado."}
TEXT["fr"] = {"title": "Connecter votre compte", "bank": "Choisissez votre banque", "login": "Connexion à",
              "username": "Identifiant", "password": "PIN / mot de passe", "sca": "Choisissez une méthode de sécurité",
              "otp": "Saisissez le code à usage unique", "otp_hint": "Nous avons envoyé un code à votre téléphone.",
              "accounts": "Choisissez les comptes", "continue": "Continuer", "cancel": "Annuler",
              "wrong_credentials": "Identifiant ou PIN incorrect.", "wrong_otp": "Code à usage unique incorrect.",
              "attempts_left": "Essais restants", "choose_account": "Veuillez choisir au moins un compte.",
              "stale": "Cette étape n'est plus d'actualité.", "search": "Rechercher une banque", "done": "Terminé",
              "expired": "Ce lien est invalide ou a expiré.", "used": "Ce lien a déjà été utilisé."}
TEXT["ar"] = {"title": "ربط الحساب", "bank": "اختر مصرفك", "login": "تسجيل الدخول إلى", "username": "اسم المستخدم",
              "password": "الرقم السري / كلمة المرور", "sca": "اختر طريقة التحقق", "otp": "أدخل كلمة المرور لمرة واحدة",
              "otp_hint": "أرسلنا كلمة مرور لمرة واحدة إلى هاتفك.", "accounts": "اختر الحسابات", "continue": "متابعة",
              "cancel": "إلغاء", "wrong_credentials": "اسم المستخدم أو الرقم السري غير صحيح.",
              "wrong_otp": "كلمة المرور لمرة واحدة غير صحيحة.", "attempts_left": "المحاولات المتبقية",
              "choose_account": "يرجى اختيار حساب واحد على الأقل.", "stale": "هذه الخطوة لم تعد سارية.",
              "search": "ابحث عن مصرف", "done": "تم", "expired": "هذا الرابط غير صالح أو منتهي الصلاحية.",
              "used": "تم استخدام هذا الرابط من قبل."}
assert all(TEXT[lang].keys() == TEXT["en"].keys() for lang in data.LANGUAGES)


def money(amount, currency: str, lang: str) -> str:
    """A balance as the widget's language writes it (de: 1.234,56 EUR)."""
    text = f"{amount:,.2f}"
    if lang in ("de", "es", "fr"):
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", "." if lang != "fr" else " ")
    return f"{text} {currency}"


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
        except (InvalidToken, KeyError, TypeError, NotFound):  # NotFound: the flow is gone (e.g. after a reset)
            raise WidgetError("expired") from None
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
            ctx["accounts"] = [self._account_choice(a, lang) for a in self._candidates(tenant, flow)]
        return ctx

    def _candidates(self, tenant: str, flow: dict) -> list[Account]:
        ledger = self.service._ledger(self.sb.seed.get(), flow, self.sb.clock.now(tenant).date())
        accounts = data.apply_preset_ibans(data.widget_accounts(ledger), flow["preset_accounts"])
        if flow["account_types"]:
            accounts = [a for a in accounts if data.ACCOUNT_TYPES[a.kind] in flow["account_types"]] or accounts[:1]
        return accounts

    @staticmethod
    def _account_choice(a: Account, lang: str) -> dict:
        return {"id": a.id, "name": a.name, "type": data.ACCOUNT_TYPES[a.kind], "iban": a.iban or a.number,
                "balance": money(a.balance, a.currency, lang)}

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
        flow["last_username"] = username  # shown again: only the password is re-typed
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

