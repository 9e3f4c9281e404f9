"""Indian data formats for every Finpass family (finpass.md section 11): validators, maskers and generators.

Pure functions, no store, no clock. Generators take a ``random.Random`` (seed it with ``ledger.generator.stable_seed``)
so their output is deterministic for a seed and valid by construction.
"""
from __future__ import annotations

import random
import re
import string

# --------------------------------------------------------------------------------------------------- patterns

PAN_RE = re.compile(r"^[A-Z]{5}[0-9]{4}[A-Z]$")
MOBILE_RE = re.compile(r"^[6-9][0-9]{9}$")
IFSC_RE = re.compile(r"^[A-Z]{4}0[A-Z0-9]{6}$")
MICR_RE = re.compile(r"^[0-9]{9}$")
CIN_RE = re.compile(r"^[LU][0-9]{5}[A-Z]{2}[0-9]{4}[A-Z]{3}[0-9]{6}$")
LLPIN_RE = re.compile(r"^[A-Z]{3}-[0-9]{4}$")
UAN_RE = re.compile(r"^[0-9]{12}$")
PINCODE_RE = re.compile(r"^[1-9][0-9]{5}$")
MASKED_ACCOUNT_RE = re.compile(r"^X+[0-9]{4}$")

# 4th PAN character: holder type (finpass.md section 11)
PAN_HOLDER_TYPES = {"P": "Person", "C": "Company", "H": "HUF", "F": "Firm/LLP", "A": "AOP", "T": "Trust",
                    "B": "BOI", "L": "Local Authority", "J": "Artificial Juridical Person", "G": "Government"}
# CIN company-type suffixes and state codes seen in real CINs
CIN_TYPES = ("PLC", "PTC", "GOI", "FLC", "NPL", "ULL", "SGC", "OPC")
STATE_CODES = {"MH": "Maharashtra", "KA": "Karnataka", "DL": "Delhi", "TN": "Tamil Nadu", "GJ": "Gujarat",
               "WB": "West Bengal", "TG": "Telangana", "UP": "Uttar Pradesh", "RJ": "Rajasthan", "HR": "Haryana",
               "KL": "Kerala", "AP": "Andhra Pradesh", "PB": "Punjab", "MP": "Madhya Pradesh"}
# IFSC prefix -> (bank name, 3-digit MICR bank code, FIP id)
BANKS = {
    "SBIN": ("State Bank of India", "002", "SBI-FIP"),
    "HDFC": ("HDFC Bank", "240", "HDFC-FIP"),
    "ICIC": ("ICICI Bank", "229", "ICICI-FIP"),
    "UTIB": ("Axis Bank", "211", "AXIS-FIP"),
    "KKBK": ("Kotak Mahindra Bank", "485", "KOTAK-FIP"),
    "PUNB": ("Punjab National Bank", "024", "PNB-FIP"),
    "BARB": ("Bank of Baroda", "012", "BOB-FIP"),
}
# 3-digit MICR city codes (first three digits = city's PIN prefix convention)
MICR_CITIES = {"Mumbai": "400", "Delhi": "110", "Bengaluru": "560", "Chennai": "600", "Kolkata": "700",
               "Hyderabad": "500", "Pune": "411", "Ahmedabad": "380", "Jaipur": "302", "Lucknow": "226"}
TXN_MODES = ("UPI", "NEFT", "IMPS", "RTGS", "ATM", "CARD", "CASH", "FT", "OTHERS")


# --------------------------------------------------------------------------------------------------- validators

def _norm(value) -> str | None:
    return value.strip().upper() if isinstance(value, str) else None


def is_pan(value) -> bool:
    v = _norm(value)
    return bool(v and PAN_RE.match(v))


def is_person_pan(value) -> bool:
    return is_pan(value) and value.strip().upper()[3] == "P"


def is_mobile(value) -> bool:
    return isinstance(value, str) and bool(MOBILE_RE.match(value))


def is_ifsc(value) -> bool:
    return isinstance(value, str) and bool(IFSC_RE.match(value))


def is_micr(value) -> bool:
    return isinstance(value, str) and bool(MICR_RE.match(value))


def is_cin(value) -> bool:
    v = _norm(value)
    return bool(v and CIN_RE.match(v))


def is_llpin(value) -> bool:
    v = _norm(value)
    return bool(v and LLPIN_RE.match(v))


def is_uan(value) -> bool:
    return isinstance(value, str) and bool(UAN_RE.match(value))


def is_pincode(value) -> bool:
    return isinstance(value, str) and bool(PINCODE_RE.match(value))


# --------------------------------------------------------------------------------------------------- maskers

def mask_pan(pan: str) -> str:
    """``ABCDE1234F`` -> ``ABCDE****F`` (finpass.md section 11)."""
    return pan[:5] + "****" + pan[-1]


def mask_mobile(mobile: str) -> str:
    """``9876543210`` -> ``98XXXXXX10``."""
    return mobile[:2] + "X" * (len(mobile) - 4) + mobile[-2:]


def mask_account(number: str, width: int | None = None) -> str:
    """``X`` padding + last 4 digits: ``XXXXXXXXXXXXX1234`` (width defaults to the number's own length)."""
    digits = re.sub(r"\D", "", number) or "0000"
    width = max(width or len(number), 5)
    return "X" * (width - 4) + digits[-4:].rjust(4, "0")


# --------------------------------------------------------------------------------------------------- generators

def bank_of_ifsc(ifsc: str) -> tuple[str, str, str]:
    """(bank name, MICR bank code, FIP id) for an IFSC; unknown prefixes get a derived name and ``<PFX>-FIP``."""
    prefix = ifsc[:4]
    return BANKS.get(prefix, (f"{prefix} Bank", f"{sum(map(ord, prefix)) % 900 + 100:03d}", f"{prefix}-FIP"))


def gen_ifsc(rng: random.Random, prefix: str | None = None) -> str:
    prefix = prefix or rng.choice(sorted(BANKS))
    return f"{prefix}0{rng.randint(0, 999999):06d}"


def gen_micr(rng: random.Random, ifsc: str | None = None, city: str | None = None) -> str:
    """city(3) + bank(3) + branch(3); the bank part follows the IFSC prefix when one is given."""
    city_code = MICR_CITIES[city] if city in MICR_CITIES else rng.choice(sorted(MICR_CITIES.values()))
    bank_code = bank_of_ifsc(ifsc)[1] if ifsc else rng.choice([b[1] for b in BANKS.values()])
    return f"{city_code}{bank_code}{rng.randint(1, 999):03d}"


def micr_for_ifsc(ifsc: str, seed_text: str = "") -> str:
    """A deterministic MICR for a branch IFSC (same branch, same MICR)."""
    rng = random.Random(f"micr:{ifsc}:{seed_text}")
    return gen_micr(rng, ifsc)


def gen_account_number(rng: random.Random, digits: int = 14) -> str:
    return str(rng.randint(10 ** (digits - 1), 10 ** digits - 1))


def gen_masked_account(rng: random.Random, width: int = 17) -> str:
    return mask_account(gen_account_number(rng, 12), width)


def gen_pan(rng: random.Random, holder_type: str = "P", surname: str | None = None) -> str:
    """A PAN valid by construction: 3 letters, holder type, surname initial (or letter), 4 digits, check letter."""
    letters = string.ascii_uppercase
    fifth = surname[0].upper() if surname and surname[0].isalpha() else rng.choice(letters)
    return ("".join(rng.choice(letters) for _ in range(3)) + holder_type + fifth
            + f"{rng.randint(1, 9999):04d}" + rng.choice(letters))


def gen_mobile(rng: random.Random) -> str:
    return str(rng.randint(6, 9)) + f"{rng.randint(0, 10 ** 9 - 1):09d}"


def gen_uan(rng: random.Random) -> str:
    return "10" + f"{rng.randint(0, 10 ** 10 - 1):010d}"


def gen_cin(rng: random.Random, listed: bool = False, year: int = 2005, state: str = "MH",
            kind: str = "PTC") -> str:
    return f"{'L' if listed else 'U'}{rng.randint(10000, 99999)}{state}{year:04d}{kind}{rng.randint(1, 999999):06d}"


def gen_llpin(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGH") for _ in range(3)) + f"-{rng.randint(1000, 9999)}"


def gen_pincode(rng: random.Random, city: str | None = None) -> str:
    prefix = MICR_CITIES.get(city or "", None) or rng.choice(sorted(MICR_CITIES.values()))
    return f"{prefix}{rng.randint(1, 99):03d}"


def hex_id(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def alnum_id(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters) for _ in range(n))
