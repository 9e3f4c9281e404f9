"""The registry behind the Finpass corporate lookups (finpass.md section 7): fixtures/in_companies.yaml.

Companies (by CIN), LLPs (by LLPIN) and a few trusts and firms (PAN only) are loaded once and checked to be valid by
construction (finpass.md section 11): every CIN decodes to its entity's listing, state, incorporation year and
company type; PAN 4th char C for companies, F for LLPs and firms, T for trusts, 5th char the name's initial. The same
entity answers identically (name, status, state, incorporation date, address) by CIN or LLPIN, by PAN and through
autocomplete, because every view is projected from the one fixture record.
"""
from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from pathlib import Path

from ...core.yamlio import load_yaml

from . import data

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "in_companies.yaml"

# CIN state codes (MCA) -> state names used in registered addresses
CIN_STATES = {**data.STATE_CODES, "AS": "Assam", "OR": "Odisha", "BR": "Bihar", "GA": "Goa", "HP": "Himachal Pradesh",
              "CH": "Chandigarh", "JH": "Jharkhand", "CT": "Chhattisgarh", "UR": "Uttarakhand",
              "JK": "Jammu and Kashmir"}
# registrar of companies per state (a state may have more than one RoC)
ROCS = {"MH": {"RoC-Mumbai", "RoC-Pune"}, "KA": {"RoC-Bangalore"}, "DL": {"RoC-Delhi"}, "HR": {"RoC-Delhi"},
        "TN": {"RoC-Chennai", "RoC-Coimbatore"}, "GJ": {"RoC-Ahmedabad"}, "WB": {"RoC-Kolkata"},
        "TG": {"RoC-Hyderabad"}, "AP": {"RoC-Vijayawada", "RoC-Hyderabad"}, "UP": {"RoC-Kanpur"},
        "RJ": {"RoC-Jaipur"}, "KL": {"RoC-Ernakulam"}, "MP": {"RoC-Gwalior"}, "PB": {"RoC-Chandigarh"},
        "CH": {"RoC-Chandigarh"}, "AS": {"RoC-Shillong"}, "OR": {"RoC-Cuttack"}, "BR": {"RoC-Patna"},
        "GA": {"RoC-Goa"}}
CIN_TYPES = {"PLC": "Public Limited Company", "PTC": "Private Limited Company", "NPL": "Section 8 Company",
             "GOI": "Government Company", "FTC": "Subsidiary of Foreign Company", "OPC": "One Person Company"}
COMPANY_STATUSES = {"Active", "Struck Off", "Under Liquidation", "Dormant", "Amalgamated"}
LLP_STATUSES = {"Active", "Defunct", "Struck Off"}
MIN_QUERY = 3          # autocomplete: fewer characters -> no results (finpass.md section 7)
MAX_RESULTS = 20


class FixtureError(ValueError):
    """fixtures/in_companies.yaml holds an entity that is not valid by construction."""


def _state_of(code: str) -> str:
    return CIN_STATES[code]


def _check_pan(pan: str, holder: str, name: str, where: str) -> None:
    if not data.is_pan(pan) or pan != pan.upper():
        raise FixtureError(f"{where}: malformed PAN {pan!r}")
    if pan[3] != holder:
        raise FixtureError(f"{where}: PAN {pan} 4th character must be {holder}")
    initial = re.sub(r"[^A-Za-z]", "", name)[:1].upper()
    if pan[4] != initial:
        raise FixtureError(f"{where}: PAN {pan} 5th character must be the name's initial {initial}")
    if is_not_found_scenario(pan):
        raise FixtureError(f"{where}: PAN {pan} is the not-found scenario")


def _check_company(c: dict) -> None:
    cin, where = c["cin"], f"company {c.get('company_name')!r}"
    if not data.is_cin(cin) or cin != cin.upper():
        raise FixtureError(f"{where}: malformed CIN {cin!r}")
    listed, state, year, kind = cin[0], cin[6:8], int(cin[8:12]), cin[12:15]
    if state not in CIN_STATES or _state_of(state) != c["state"]:
        raise FixtureError(f"{where}: CIN state {state} does not match {c['state']}")
    if c["state"] not in c["registered_address"]:
        raise FixtureError(f"{where}: address is not in {c['state']}")
    if date.fromisoformat(str(c["date_of_incorporation"])).year != year:
        raise FixtureError(f"{where}: CIN year {year} does not match {c['date_of_incorporation']}")
    if CIN_TYPES.get(kind) != c["company_type"]:
        raise FixtureError(f"{where}: CIN type {kind} does not match {c['company_type']}")
    if (listed == "L") != bool(c["listed"]) or (listed == "L" and kind != "PLC"):
        raise FixtureError(f"{where}: CIN listing {listed} does not match")
    if c["roc_code"] not in ROCS.get(state, ()):
        raise FixtureError(f"{where}: {c['roc_code']} is not a registrar of {state}")
    if c["status"] not in COMPANY_STATUSES:
        raise FixtureError(f"{where}: unknown status {c['status']}")
    if not 0 < c["paid_up_capital"] <= c["authorised_capital"]:
        raise FixtureError(f"{where}: paid-up capital must be positive and at most the authorised capital")
    if is_not_found_scenario(cin):
        raise FixtureError(f"{where}: CIN {cin} is the not-found scenario")
    _check_pan(c["pan"], "C", c["company_name"], where)


def _check_llp(entry: dict) -> None:
    llpin, where = entry["llpin"], f"LLP {entry.get('llp_name')!r}"
    if not data.is_llpin(llpin) or llpin != llpin.upper():
        raise FixtureError(f"{where}: malformed LLPIN {llpin!r}")
    if date.fromisoformat(str(entry["date_of_incorporation"])).year < 2009:
        raise FixtureError(f"{where}: LLPs exist since the LLP Act 2008 (first LLPINs in 2009)")
    if entry["state"] not in entry["registered_address"] or entry["state"] not in CIN_STATES.values():
        raise FixtureError(f"{where}: unknown state or address outside {entry['state']}")
    if entry["status"] not in LLP_STATUSES:
        raise FixtureError(f"{where}: unknown status {entry['status']}")
    if not entry["llp_name"].endswith("LLP"):
        raise FixtureError(f"{where}: an LLP's name ends with LLP")
    if is_not_found_scenario(llpin):
        raise FixtureError(f"{where}: LLPIN {llpin} is the not-found scenario")
    _check_pan(entry["pan"], "F", entry["llp_name"], where)


def _check_other(entry: dict) -> None:
    holder = {"Trust": "T", "Firm": "F"}.get(entry["entity_type"])
    if holder is None:
        raise FixtureError(f"{entry['entity_name']!r}: entity_type must be Trust or Firm")
    _check_pan(entry["pan"], holder, entry["entity_name"], repr(entry["entity_name"]))


class Registry:
    """The loaded fixture with its three indexes (CIN, LLPIN, PAN)."""

    def __init__(self, raw: dict):
        self.companies = [dict(c, date_of_incorporation=str(c["date_of_incorporation"])) for c in raw["companies"]]
        self.llps = [dict(c, date_of_incorporation=str(c["date_of_incorporation"])) for c in raw["llps"]]
        self.others = [dict(c, date_of_incorporation=str(c["date_of_incorporation"])) for c in raw.get("others", [])]
        for c in self.companies:
            _check_company(c)
        for entry in self.llps:
            _check_llp(entry)
        for entry in self.others:
            _check_other(entry)
        self.by_cin = {c["cin"]: c for c in self.companies}
        self.by_llpin = {c["llpin"]: c for c in self.llps}
        self.by_pan: dict[str, tuple[str, dict]] = {}
        for kind, items in (("Company", self.companies), ("LLP", self.llps), ("other", self.others)):
            for item in items:
                if item["pan"] in self.by_pan:
                    raise FixtureError(f"PAN {item['pan']} appears twice")
                self.by_pan[item["pan"]] = (kind, item)
        if len(self.by_cin) != len(self.companies) or len(self.by_llpin) != len(self.llps):
            raise FixtureError("a CIN or LLPIN appears twice")


@lru_cache(maxsize=1)
def registry() -> Registry:
    return Registry(load_yaml(FIXTURE))


def load(path: Path) -> Registry:
    """A registry from another fixture file (tests)."""
    return Registry(load_yaml(path))


def is_not_found_scenario(identifier: str) -> bool:
    """finpass.md section 12: a CIN/LLPIN/PAN whose digits are all 9 (e.g. ``AAACZ9999Z``) -> 404 NOT_FOUND."""
    digits = re.sub(r"\D", "", identifier or "")
    return bool(digits) and set(digits) == {"9"}


# --- the documented views (finpass.md section 7) --------------------------------------------------------------
def company_view(c: dict) -> dict:
    return {"cin": c["cin"], "company_name": c["company_name"], "status": c["status"],
            "company_type": c["company_type"], "date_of_incorporation": c["date_of_incorporation"],
            "registered_address": c["registered_address"], "state": c["state"], "roc_code": c["roc_code"],
            "authorised_capital": c["authorised_capital"], "paid_up_capital": c["paid_up_capital"],
            "email": c["email"], "pan": c["pan"]}


def llp_view(c: dict) -> dict:
    return {"llpin": c["llpin"], "llp_name": c["llp_name"], "status": c["status"],
            "date_of_incorporation": c["date_of_incorporation"], "registered_address": c["registered_address"],
            "state": c["state"], "roc_code": c["roc_code"],
            "total_obligation_of_contribution": c["total_obligation_of_contribution"], "email": c["email"],
            "pan": c["pan"]}


def entity_view(kind: str, c: dict) -> dict:
    """The PAN-lookup view of any fixture entity."""
    if kind == "Company":
        name, entity_type, cin, llpin = c["company_name"], "Company", c["cin"], None
    elif kind == "LLP":
        name, entity_type, cin, llpin = c["llp_name"], "LLP", None, c["llpin"]
    else:
        name, entity_type, cin, llpin = c["entity_name"], c["entity_type"], None, None
    return {"pan": c["pan"], "entity_name": name, "entity_type": entity_type, "status": c["status"], "cin": cin,
            "llpin": llpin, "date_of_incorporation": c["date_of_incorporation"],
            "registered_address": c["registered_address"], "state": c["state"]}


def autocomplete_view(kind: str, c: dict) -> dict:
    full = entity_view(kind, c)
    return {k: full[k] for k in ("entity_name", "entity_type", "cin", "llpin", "status", "state")}


# --- lookups ------------------------------------------------------------------------------------------------------
def find_cin(cin: str) -> dict | None:
    return None if is_not_found_scenario(cin) else registry().by_cin.get(cin)


def find_llpin(llpin: str) -> dict | None:
    return None if is_not_found_scenario(llpin) else registry().by_llpin.get(llpin)


def find_pan(pan: str) -> tuple[str, dict] | None:
    return None if is_not_found_scenario(pan) else registry().by_pan.get(pan)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9& ]", " ", text.lower())).strip()


def autocomplete(query: str, limit: int = MAX_RESULTS) -> list[dict]:
    """Companies and LLPs whose name matches ``query`` (case- and punctuation-insensitive): names starting with it
    first, then names with a word starting with it, then names containing it; alphabetical within each rank."""
    q = _norm(query or "")
    if len(q.replace(" ", "")) < MIN_QUERY:
        return []
    ranked = []
    reg = registry()
    for kind, items, field in (("Company", reg.companies, "company_name"), ("LLP", reg.llps, "llp_name")):
        for item in items:
            name = _norm(item[field])
            if name.startswith(q):
                rank = 0
            elif f" {q}" in f" {name}":
                rank = 1
            elif q in name:
                rank = 2
            else:
                continue
            ranked.append((rank, item[field], kind, item))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [autocomplete_view(kind, item) for _, _, kind, item in ranked[:limit]]
