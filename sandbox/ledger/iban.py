"""ISO 13616 IBAN helpers (mod-97 check digits) and the Israeli / German account layouts."""
from __future__ import annotations

import re

# Total IBAN lengths for the countries the sandbox produces (others are only checked for mod-97).
IBAN_LENGTHS = {"IL": 23, "DE": 22, "AT": 20, "CH": 21, "FR": 27, "GB": 22, "NL": 18, "ES": 24, "IT": 27}

_IBAN_RE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}$")


def _to_digits(text: str) -> str:
    """Letters A..Z become 10..35, digits stay (ISO 7064 preparation)."""
    return "".join(str(int(ch, 36)) for ch in text)


def iban_check_digits(country: str, bban: str) -> str:
    """The two ISO 13616 check digits for ``country`` + ``bban`` (98 - mod 97)."""
    country, bban = country.upper(), bban.upper().replace(" ", "")
    remainder = int(_to_digits(bban + country + "00")) % 97
    return f"{98 - remainder:02d}"


def make_iban(country: str, bban: str) -> str:
    """A complete IBAN (no spaces) for ``country`` and ``bban``."""
    country, bban = country.upper(), bban.upper().replace(" ", "")
    return f"{country}{iban_check_digits(country, bban)}{bban}"


def is_valid_iban(s: str) -> bool:
    """True if ``s`` (spaces allowed) is well formed, has a known length for its country and passes mod-97."""
    if not isinstance(s, str):
        return False
    iban = s.replace(" ", "").upper()
    if not _IBAN_RE.match(iban):
        return False
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    return int(_to_digits(iban[4:] + iban[:4])) % 97 == 1


def il_bban(bank: int | str, branch: int | str, account: int | str) -> str:
    """Israeli BBAN: 3-digit bank + 3-digit branch + 13-digit zero-padded account (19 digits)."""
    return f"{int(bank):03d}{int(branch):03d}{int(account):013d}"


def il_iban(bank: int | str, branch: int | str, account: int | str) -> str:
    """Israeli IBAN, e.g. bank 31 branch 114 account 436003 -> ``IL060311140000000436003``."""
    return make_iban("IL", il_bban(bank, branch, account))


def de_iban(blz8: int | str, account10: int | str) -> str:
    """German IBAN from an 8-digit BLZ and an account number (zero-padded to 10 digits)."""
    blz = f"{int(blz8):08d}"
    if len(blz) != 8:
        raise ValueError(f"BLZ must have 8 digits: {blz8!r}")
    account = f"{int(account10):010d}"
    if len(account) != 10:
        raise ValueError(f"account number must have at most 10 digits: {account10!r}")
    return make_iban("DE", blz + account)


def parse_il_iban(iban: str) -> tuple[int, int, int]:
    """(bank, branch, account) from an Israeli IBAN."""
    iban = iban.replace(" ", "").upper()
    if not iban.startswith("IL") or len(iban) != 23:
        raise ValueError(f"not an Israeli IBAN: {iban!r}")
    return int(iban[4:7]), int(iban[7:10]), int(iban[10:])
