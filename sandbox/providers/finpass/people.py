"""One Indian person per (key pair, mobile or PAN): every Finpass product tells the same story about them.

AA reports, AA-BSA statements, EPFO salary credits, ITR incomes and bureau loans all come from the person's single
ledger (market IN). A person is keyed by mobile number; a PAN seen together with a mobile (AA init, multi-bureau,
EPFO) is linked to it, so a later PAN-only call (ITR, corporate PAN of a proprietor) reaches the same person.
The person's own PAN is the ledger's ``national_id`` unless the client named another one first.
"""
from __future__ import annotations

from datetime import date, timedelta, timezone

from ...core import fastjson
from ...core.derived import Derived
from ...ledger import generate_ledger
from ...ledger.models import Ledger, ledger_from_json

_PEOPLE, _PANS, _LEDGERS = "finpass.people", "finpass.pans", "finpass.ledgers"
MONTHS = 13   # a year of statements plus the running month (finpass.md section 11)
IST = timezone(timedelta(hours=5, minutes=30))   # Finpass dates are Indian (finpass.md s.4 "+05:30" timestamps)
# decoded ledgers, reused while the stored text is the same (core/derived.py): a fetch report decoded the
# person's 13-month ledger six times per request (issue 14)
_LEDGER_CACHE = Derived(size=8)


def _decode(text: str) -> Ledger:
    return ledger_from_json(fastjson.loads(text))


class People:
    """Registry of persons and their ledgers in one tenant (the key pair)."""

    def __init__(self, sandbox, tenant: str):
        self.sb, self.tenant = sandbox, tenant
        self.people = sandbox.collection(tenant, _PEOPLE)
        self.pans = sandbox.collection(tenant, _PANS)

    def key(self, mobile: str | None = None, pan: str | None = None) -> str:
        """The person key for a mobile and/or PAN (linking the two when both are given)."""
        pan = pan.upper() if pan else None
        if mobile:
            key = f"m:{mobile}"
            if pan and self.pans.get(pan) is None:
                self.pans.put(pan, {"id": pan, "person": key})
            return key
        if pan:
            linked = self.pans.get(pan)
            return linked["person"] if linked else f"p:{pan}"
        raise ValueError("a person needs a mobile number or a PAN")

    def ledger(self, key: str, today: date | None = None) -> Ledger:
        """The person's ledger, generated once (deterministic for the seed) and kept, anchored on first use.
        Shared with later requests of this process while the stored ledger is the same: read-only."""
        found = self.sb.store.get_text(self.tenant, _LEDGERS, key)
        if found is not None:
            return _LEDGER_CACHE.get((self.tenant, key), found, _decode)
        # anchored on the Indian calendar day, the day every Finpass window ends on (not the UTC day)
        today = today or self.sb.clock.now(self.tenant).astimezone(IST).date()
        ledger = generate_ledger(self.sb.seed.get(), f"finpass:{key}", today, market="IN", months=MONTHS)
        linked_pan = key[2:] if key.startswith("p:") else None
        if linked_pan:
            ledger.national_id = linked_pan
        self.sb.store.add(self.tenant, _LEDGERS, key, ledger.to_json())   # first writer wins
        return _LEDGER_CACHE.get((self.tenant, key), self.sb.store.get_text(self.tenant, _LEDGERS, key), _decode)

    def pan_of(self, key: str) -> str:
        """The PAN the person is known by (the client's, when it named one)."""
        for item in self.pans.list():
            if item["person"] == key:
                return item["id"]
        return self.ledger(key).national_id
