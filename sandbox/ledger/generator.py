"""Deterministic synthetic ledgers: one customer's accounts, balances and 1-36+ months of bookings.

Everything derives from (seed, customer_id, market, persona) and the ``anchor`` date (the sandbox clock's "today"):
no wall clock, no global random state. Personas and markets are YAML data in ``fixtures/``.

Money is handled in integer cents internally and converted to ``Decimal`` (two places) at the edge, so every
balance identity holds exactly. Design choices worth knowing:

* Identity (persona, names, banks, account numbers, employer, base salary, fixed bills) comes from an RNG that
  ignores ``anchor``/``months``; variable spending comes from one RNG per calendar month. Moving the anchor
  therefore keeps the same customer, accounts and (mostly) the same past bookings.
* Credit cards: charges of calendar month M (booked in the window) are settled in month M+1 by one
  ``card_settlement`` debit on checking and the matching credit on the card, same day and amount.
* Loans and mortgages: the account balance is negative (amount owed). Each month the loan account books an
  ``interest_charge`` (outstanding * rate / 12) and then a credit equal to the full instalment that checking pays
  (``loan_repayment`` / ``mortgage``), so the two legs match exactly and the debt falls by the principal part.
* Securities: balance == sum of holding values; opening balance is that value minus the in-window purchases.
* India has no IBAN: IN accounts and counterparties carry ``iban=None`` and ``bank_code`` holds the IFSC.
"""
from __future__ import annotations

import bisect
import calendar
import hashlib
import math
import random
import string
import threading
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from ..core.yamlio import load_yaml

from .iban import de_iban, il_iban
from .models import CATEGORY_KINDS, Account, Holding, Ledger, Transaction

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"   # package data

_MONTHS_EN = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_SCHEDULE_STEP = {"monthly": 1, "bimonthly": 2, "quarterly": 3, "semiannual": 6, "yearly": 12}
_FAKER_LOCK = threading.RLock()


# --------------------------------------------------------------------------------------------------- seeds & data

def stable_seed(*parts) -> int:
    """A 64-bit seed from the repr of ``parts`` via SHA-256: stable across processes (never ``hash()``)."""
    text = "\x1f".join(repr(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "big")


@lru_cache(maxsize=None)
def _market(code: str) -> dict:
    path = FIXTURES / "markets" / f"{code}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown market {code!r}; known: {', '.join(available_markets())}")
    data = load_yaml(path)
    data["_bank_weights"] = _cum_weights(data["banks"])
    if data.get("card_issuers"):
        data["_issuer_weights"] = _cum_weights(data["card_issuers"])
    return data


def market_banks(code: str) -> list[dict]:
    """The banks of a market fixture (id, name, code, ...): data for hosted bank-selection pages."""
    return [{k: v for k, v in b.items() if not k.startswith("_")} for b in _market(code)["banks"]]


@lru_cache(maxsize=None)
def _personas() -> dict:
    personas = {}
    for path in sorted((FIXTURES / "personas").glob("*.yaml")):
        data = load_yaml(path)
        used = [i["category"] for i in data.get("income") or []] + [b["category"] for b in data.get("bills") or []]
        used += list((data.get("spending") or {}).keys())
        bad = [c for c in used if c not in CATEGORY_KINDS]
        if bad:
            raise ValueError(f"persona {path.stem}: unknown categories {bad}")
        personas[path.stem] = data
    return personas


def available_personas() -> tuple[str, ...]:
    """Persona names (fixture file stems), sorted."""
    return tuple(_personas())


def available_markets() -> tuple[str, ...]:
    """Market codes with a fixture file, sorted."""
    return tuple(sorted(p.stem for p in (FIXTURES / "markets").glob("*.yaml")))


def choose_persona(seed: int, customer_id: str) -> str:
    """The persona a customer gets when none is forced: weighted, deterministic in (seed, customer_id)."""
    personas = _personas()
    names = list(personas)
    weights = [personas[n].get("weight", 1) for n in names]
    return random.Random(stable_seed(seed, customer_id, "persona")).choices(names, weights)[0]


@lru_cache(maxsize=None)
def _faker(locale: str):
    from faker import Faker  # imported lazily: the import alone costs ~70 ms

    return Faker(locale)


def _cum_weights(items: list) -> list:
    total, out = 0, []
    for item in items:
        total += item.get("weight", 1)
        out.append(total)
    return out


def _weighted(rng: random.Random, items: list, cum: list):
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


# --------------------------------------------------------------------------------------------------- small helpers

def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def add_months(d: date, n: int) -> date:
    """``d`` moved by ``n`` calendar months, the day clamped to the target month's length."""
    y, m = divmod(d.month - 1 + n, 12)
    y += d.year
    m += 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def _nice_step(x: float) -> int:
    """Largest 1/2/5 * 10^k not above ``x`` (at least 1): used to round amounts to natural figures."""
    if x < 1:
        return 1
    k = 10 ** int(math.floor(math.log10(x)))
    for f in (5, 2, 1):
        if f * k <= x:
            return f * k
    return k


def _uniform_cents(rng: random.Random, rng_range, scale: float, round_to=None) -> int:
    lo, hi = rng_range
    value = rng.uniform(lo, hi) * scale
    if round_to:
        step = _nice_step(round_to * scale)
        return max(step, int(round(value / step)) * step) * 100
    return max(1, int(round(value * 100)))


def _spend_cents(rng: random.Random, rng_range, scale: float) -> int:
    lo, hi = rng_range
    value = rng.triangular(lo, hi, lo + (hi - lo) * 0.25) * scale
    return max(1, int(round(value * 100)))


class _Ctx:
    """Mutable state of one generation run (kept out of the public API)."""

    def __init__(self, market: dict, start: date, anchor: date):
        self.market = market
        self.code = market["code"]
        self.currency = market["currency"]
        self.scale = float(market["scale"])
        self.weekend = frozenset(market.get("weekend", (5, 6)))
        self.texts = market["texts"]
        self.start = start
        self.anchor = anchor
        self.seq = 0
        self.events: dict[str, list] = {}

    def business_day(self, y: int, m: int, day: int) -> date:
        """Day ``day`` of (y, m), clamped; weekend days roll forward in the first half, backward after."""
        last = calendar.monthrange(y, m)[1]
        d = date(y, m, min(max(day, 1), last))
        step = timedelta(days=1 if d.day <= 15 else -1)
        while d.weekday() in self.weekend:
            d += step
        return d

    def add(self, account_id: str, booking: date, cents: int, text: str, counterparty: str, category: str,
            cp_iban: str | None = None, value_date: date | None = None, event: str | None = None) -> None:
        self.seq += 1
        self.events[account_id].append(
            (booking, self.seq, cents, value_date or booking, text, counterparty, cp_iban, category, event))

    def text(self, channel: str, name: str = "", ref="", d: date | None = None, card: str = "", upi: str = "") -> str:
        template = self.texts[channel]
        if "{" not in template:
            return template
        d = d or self.anchor
        return template.format(name=name, ref=ref, mm=f"{d.month:02d}", yyyy=d.year, mon=_MONTHS_EN[d.month - 1],
                               card=card, upi=upi)


@lru_cache(maxsize=8192)
def counterparty_iban(market: str, name: str) -> str | None:
    """A stable, valid IBAN for a named counterparty in ``market`` (None where IBANs do not exist)."""
    if market not in ("IL", "DE"):
        return None
    data = _market(market)
    rng = random.Random(stable_seed("counterparty", market, name))
    bank = _weighted(rng, data["banks"], data["_bank_weights"])
    if market == "IL":
        return il_iban(int(bank["code"]), rng.randint(1, 999), rng.randint(10 ** 5, 10 ** 9 - 1))
    return de_iban(bank["code"], rng.randint(10 ** 6, 10 ** 10 - 1))


# --------------------------------------------------------------------------------------------------- identity

def _national_id(kind: str, rng: random.Random, last_name: str) -> str:
    if kind == "il_teudat_zehut":
        digits = [rng.randint(0, 9) for _ in range(8)]
        total = 0
        for i, d in enumerate(digits):
            x = d * (1 if i % 2 == 0 else 2)
            total += x // 10 + x % 10
        return "".join(map(str, digits)) + str((10 - total % 10) % 10)
    if kind == "de_steuer_id":
        pool = rng.sample(range(10), 9)
        digits = pool + [rng.choice(pool)]
        rng.shuffle(digits)
        if digits[0] == 0:
            i = next(i for i, d in enumerate(digits) if d != 0)
            digits[0], digits[i] = digits[i], digits[0]
        product = 10
        for d in digits:
            s = (d + product) % 10 or 10
            product = (s * 2) % 11
        check = 11 - product
        return "".join(map(str, digits)) + str(0 if check == 10 else check)
    if kind == "in_pan":
        letters = string.ascii_uppercase
        initial = next((c for c in last_name.upper() if c in letters), "K")
        return ("".join(rng.choice(letters) for _ in range(3)) + "P" + initial
                + f"{rng.randint(0, 9999):04d}" + rng.choice(letters))
    raise ValueError(f"unknown national id scheme {kind!r}")


def _names(market: dict, irng: random.Random, seed: int, customer_id: str, owner_name: str | None):
    """(owner latin, owner native, last name latin, landlord person name, parent name)."""
    if market["code"] == "IL":
        first = irng.choice(market["first_names"])
        last = irng.choice(market["last_names"])
        parent_first = irng.choice(market["first_names"])
        latin, native = f"{first[1]} {last[1]}", f"{first[0]} {last[0]}"
        last_latin, last_native = last[1], last[0]
        with _FAKER_LOCK:
            fake = _faker(market["name_locale"])
            fake.seed_instance(stable_seed(seed, customer_id, "IL", "faker"))
            landlord = f"{fake.first_name()} {fake.last_name()}"
        parent = f"{parent_first[0]} {last_native}"
    else:
        with _FAKER_LOCK:
            fake = _faker(market["name_locale"])
            fake.seed_instance(stable_seed(seed, customer_id, market["code"], "faker"))
            first, last_latin = fake.first_name(), fake.last_name()
            landlord = f"{fake.first_name()} {fake.last_name()}"
            parent = f"{fake.first_name()} {last_latin}"
        latin = native = f"{first} {last_latin}"
        last_native = last_latin
    if owner_name:
        latin = native = owner_name
        last_latin = last_native = owner_name.split()[-1] if owner_name.split() else owner_name
        parent = f"{parent.split()[0]} {last_native}"
    return latin, native, last_latin, landlord, parent


class _Bank:
    """Account-number factory for one market bank (IL BBAN/IBAN, DE BLZ/IBAN, IN IFSC)."""

    def __init__(self, market: dict, bank: dict, rng: random.Random):
        self.market, self.bank, self.code = market, bank, market["code"]
        self.used: set[str] = set()
        if self.code == "IL":
            self.branch = f"{rng.randint(1, 999):03d}"
            self.bank_code = f"{int(bank['code']):02d}"
        elif self.code == "DE":
            self.branch = None
            self.bank_code = bank["code"]
        else:
            branch = f"{rng.randint(0, 999999):06d}"
            self.branch = branch
            self.bank_code = f"{bank['ifsc']}0{branch}"

    def new_number(self, rng: random.Random) -> tuple[str, str | None]:
        while True:
            if self.code == "IL":
                lo, hi = self.bank.get("account_digits", [6, 9])
                n = rng.randint(lo, hi)
                account = rng.randint(10 ** (n - 1), 10 ** n - 1)
                number = f"{self.bank_code}-{self.branch}-{account}"
                iban = il_iban(int(self.bank_code), int(self.branch), account)
            elif self.code == "DE":
                account = rng.randint(10 ** 6, 10 ** 10 - 1)
                number = f"{account:010d}"
                iban = de_iban(self.bank_code, account)
            else:
                lo, hi = self.bank.get("account_digits", [11, 14])
                n = rng.randint(lo, hi)
                number = str(rng.randint(10 ** (n - 1), 10 ** n - 1))
                iban = None
            if number not in self.used:
                self.used.add(number)
                return number, iban


def _masked_pan(rng: random.Random, length: int = 16) -> str:
    return "*" * (length - 4) + f"{rng.randint(0, 9999):04d}"


def _market_features(mk: dict, pinned: dict, seed: int, customer_id: str) -> dict:
    """The market features (fixtures/markets/<M>.yaml ``features``) a customer has: those its ``customers`` entry
    pins, else each with its ``probability``, drawn from its own RNG so every other booking stays as it was."""
    config = mk.get("features") or {}
    forced = set(pinned.get("features") or ())
    chosen = {name: conf for name, conf in config.items() if name in forced or random.Random(
        stable_seed(seed, customer_id, mk["code"], "feature", name)).random() < float(conf.get("probability", 0))}
    for name in list(chosen):
        for needed in chosen[name].get("requires") or ():
            chosen.setdefault(needed, config[needed])
    return chosen


# --------------------------------------------------------------------------------------------------- generation

def generate_ledger(seed: int, customer_id: str, anchor: date, market: str = "IL", months: int = 12,
                    persona: str | None = None, owner_name: str | None = None) -> Ledger:
    """Build one customer's deterministic ledger: ``months`` months of bookings ending on ``anchor``.

    The same arguments always give an identical ledger (compare ``to_json()``).
    """
    if months < 1:
        raise ValueError("months must be >= 1")
    code = str(market).upper()
    mk = _market(code)
    personas = _personas()
    pinned = (mk.get("customers") or {}).get(str(customer_id)) or {}   # fixtures/markets/<M>.yaml `customers`
    persona_name = persona or pinned.get("persona") or choose_persona(seed, customer_id)
    if persona_name not in personas:
        raise ValueError(f"unknown persona {persona_name!r}; known: {', '.join(personas)}")
    p = personas[persona_name]

    start = add_months(anchor, -months)
    ctx = _Ctx(mk, start, anchor)
    scale = ctx.scale
    irng = random.Random(stable_seed(seed, customer_id, code, persona_name, "identity"))

    # names and national id ignore the persona: forcing a persona keeps the same person
    nrng = random.Random(stable_seed(seed, customer_id, code, "names"))
    latin, native, last_latin, landlord_person, parent_name = _names(mk, nrng, seed, customer_id, owner_name)
    national_id = _national_id(mk["national_id"], nrng, last_latin)
    prefix = f"{stable_seed(seed, customer_id):016x}"[:8]

    # ---- identity-level recurring items
    def pay_day(category: str, default: int) -> int:
        override = (mk.get("pay_days") or {}).get(category)
        return irng.randint(*override) if override else default

    sources = {"employer": mk.get("employers"), "pension_payer": mk.get("pension_payers"),
               "benefits_payer": mk.get("benefits_payers"), "client": mk.get("clients")}
    incomes = []
    lifestyle = None  # 0..1: where the main regular income fell in its range; richer people spend and save more
    for inc in p.get("income") or []:
        item = dict(inc)
        src = inc.get("source", "employer")
        if src == "parents":
            item["_name"] = parent_name
        elif src == "client":
            clients = sources["client"]
            item["_clients"] = irng.sample(clients, min(len(clients), irng.randint(2, 4)))
        else:
            item["_name"] = irng.choice(sources[src])
        if "per_month" not in inc:
            item["_base"] = _uniform_cents(irng, inc["amount"], scale, inc.get("round"))
            if lifestyle is None:
                lo, hi = inc["amount"]
                lifestyle = min(1.0, max(0.0, (item["_base"] / 100 / scale - lo) / ((hi - lo) or 1)))
            item["_growth"] = irng.uniform(*inc["growth"]) if inc.get("growth") else 0.0
            item["_day"] = pay_day(inc["category"], inc.get("day", 28))
        item["_iban"] = counterparty_iban(code, item["_name"]) if "_name" in item else None
        incomes.append(item)
    lifestyle = 0.5 if lifestyle is None else lifestyle

    def by_lifestyle(rng_range, factor=scale, round_to=None) -> int:
        """An amount from ``rng_range`` centred where the main income sits in its own range."""
        lo, hi = rng_range
        mid = lo + (hi - lo) * (0.15 + 0.7 * lifestyle)
        return _uniform_cents(irng, (mid - (hi - lo) * 0.15, mid + (hi - lo) * 0.15), factor, round_to)

    # ---- accounts (specs; balances are filled in at the end)
    bank = _Bank(mk, _weighted(irng, mk["banks"], mk["_bank_weights"]), irng)
    names = mk["account_names"]
    specs: list[dict] = []
    counters: dict[str, int] = {}

    def open_account(kind: str, **extra) -> dict:
        counters[kind] = counters.get(kind, 0) + 1
        spec = {"id": f"{prefix}-{kind}-{counters[kind]}", "kind": kind, "name": names.get(kind, kind),
                "bank_id": bank.bank["id"], "bank_name": bank.bank["name"], "bank_code": bank.bank_code,
                "branch": bank.branch, "credit_limit": None, "holdings": []}
        if kind != "credit_card" and "number" not in extra:
            spec["number"], spec["iban"] = bank.new_number(irng)
            if kind == "securities":
                spec["iban"] = None
        spec.update(extra)
        specs.append(spec)
        ctx.events[spec["id"]] = []
        return spec

    checking = open_account("checking")
    cid = checking["id"]

    cards = []
    card_cfg = p.get("credit_card")
    if card_cfg:
        issuers_used: set[str] = set()
        for _ in range(int(card_cfg.get("count", 1))):
            if mk.get("card_issuers"):
                pool = [i for i in mk["card_issuers"] if i["id"] not in issuers_used] or mk["card_issuers"]
                issuer = _weighted(irng, pool, _cum_weights(pool))
                issuers_used.add(issuer["id"])
                extra = {"name": irng.choice(issuer["products"]), "bank_id": issuer["id"],
                         "bank_name": issuer["name"]}
                pan_len, limit_range, fee_range = issuer.get("pan_length", 16), issuer["limit"], issuer.get("card_fee")
            else:
                card_def = bank.bank["card"]
                extra = {"name": irng.choice(card_def["names"])}
                pan_len, limit_range, fee_range = 16, card_def["limit"], mk.get("card_fee")
            extra.update(number=_masked_pan(irng, pan_len), iban=None)
            spec = open_account("credit_card", **extra)
            step = 1000 if limit_range[1] < 100000 else 10000
            spec["_limit"] = irng.randint(limit_range[0] // step, limit_range[1] // step) * step * 100
            fee = int(round(irng.uniform(*fee_range) * 100)) if fee_range else 0
            spec["_fee"] = fee if card_cfg.get("fee", True) else 0
            spec["_settle_day"] = irng.choice(mk.get("card_settlement_days", [10]))
            cards.append(spec)
    card_cum = _cum_weights([{"weight": 7 if i == 0 else 3} for i in range(len(cards))]) if cards else []
    card_share = float(card_cfg.get("share", 0.8)) if card_cfg else 0.0

    savings = open_account("savings") if p.get("savings") else None
    loans = []
    for kind in ("loan", "mortgage"):
        cfg = p.get(kind)
        if cfg:
            spec = open_account(kind)
            principal = by_lifestyle(cfg["principal"], round_to=100)
            rate = irng.uniform(*cfg["rate"])
            remaining = max(irng.randint(*cfg["remaining_months"]), months + 12)
            r = rate / 12
            payment = int(math.ceil(principal * r / (1 - (1 + r) ** -remaining)))
            spec.update(_principal=principal, _rate=r, _payment=payment, _day=cfg.get("day", 1),
                        _ref=str(irng.randint(10 ** 7, 10 ** 9)))
            loans.append(spec)
    securities = open_account("securities") if p.get("securities") else None

    housing = p.get("housing") or {"type": "none"}
    rent = None
    if housing.get("type") == "rent":
        if irng.random() < 0.35 and mk.get("landlords_companies"):
            who = irng.choice(mk["landlords_companies"])
        else:
            who = landlord_person
        rent = {"name": who, "iban": counterparty_iban(code, who), "day": housing.get("day", 1),
                "cents": by_lifestyle(housing["amount"], round_to=housing.get("round", 10))}

    bills = []
    for b in p.get("bills") or []:
        payee = (mk.get("payees") or {}).get(b["payee"])
        if not payee:
            continue
        schedule = payee.get("schedule") or b.get("schedule", "monthly")
        step = _SCHEDULE_STEP[schedule]
        name = irng.choice(payee["names"])
        if payee.get("amount") is not None:
            fixed = int(round(float(payee["amount"]) * 100))
        elif b.get("fixed"):
            fixed = _uniform_cents(irng, b["amount"], scale * step)
        else:
            fixed = None
        bills.append({"name": name, "category": b["category"], "step": step, "offset": irng.randrange(step),
                      "day": b.get("day", 1), "fixed": fixed, "amount": b["amount"],
                      "channel": b.get("channel", "debit"), "ref": str(irng.randint(10 ** 6, 10 ** 10)),
                      "iban": counterparty_iban(code, name)})

    spend_scale = scale * (0.85 + 0.4 * lifestyle)
    account_fee = int(round(irng.uniform(*bank.bank.get("account_fee", [0, 0])) * 100))
    spending = [(cat, cfg, mk["merchants"][cat]) for cat, cfg in (p.get("spending") or {}).items()
                if mk.get("merchants", {}).get(cat)]
    cash_cfg = p.get("cash")
    atm_names = mk["merchants"].get("cash_withdrawal") or ["ATM"]
    refund_p = float((p.get("refunds") or {}).get("probability", 0.0))
    sav_cfg = p.get("savings")
    sav_cents = by_lifestyle(sav_cfg["monthly"], round_to=sav_cfg.get("round")) if sav_cfg else 0
    sec_cfg = p.get("securities")
    sec_cents = (by_lifestyle(sec_cfg["monthly_purchase"], round_to=sec_cfg.get("round"))
                 if sec_cfg and sec_cfg.get("monthly_purchase") else 0)
    sec_ref = str(irng.randint(10 ** 7, 10 ** 9))
    upi_handle = irng.choice(mk.get("upi_handles") or [""])
    card_label = {c["id"]: c["number"][-4:] for c in cards}
    card_label[cid] = f"{irng.randint(0, 9999):04d}"  # the debit card on checking

    # ---- month by month
    month_list = []
    y, m = start.year, start.month
    while (y, m) <= (anchor.year, anchor.month):
        month_list.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)

    for y, m in month_list:
        mrng = random.Random(stable_seed(seed, customer_id, code, persona_name, y, m))
        last = calendar.monthrange(y, m)[1]
        first_day = date(y, m, 1)

        def rand_day() -> date:
            return first_day + timedelta(days=int(mrng.random() * last))

        for inc in incomes:
            if inc.get("probability") is not None and mrng.random() >= inc["probability"]:
                continue
            channel = inc["category"]  # income texts are keyed by category
            if "per_month" in inc:
                for _ in range(mrng.randint(*inc["per_month"])):
                    d = rand_day()
                    if d.weekday() in ctx.weekend:
                        d = ctx.business_day(y, m, d.day)
                    name = mrng.choice(inc["_clients"])
                    ctx.add(cid, d, _uniform_cents(mrng, inc["amount"], scale, inc.get("round")),
                            ctx.text(channel, name, f"{y}{mrng.randint(1, 999):03d}", d),
                            name, inc["category"], counterparty_iban(code, name))
            else:
                d = ctx.business_day(y, m, inc["_day"])
                cents = int(round(inc["_base"] * (1 + inc["_growth"]) ** max(-30, min(30, y - 2025))))   # bounded growth: a clock moved to year 9999 stays sane
                ref = f"{mrng.randint(10 ** 9, 10 ** 10 - 1)}"
                ctx.add(cid, d, cents, ctx.text(channel, inc["_name"], ref, d), inc["_name"], inc["category"],
                        inc["_iban"])

        if rent:
            d = ctx.business_day(y, m, rent["day"])
            ctx.add(cid, d, -rent["cents"], ctx.text("rent", rent["name"], mrng.randint(10 ** 11, 10 ** 12 - 1), d),
                    rent["name"], "rent", rent["iban"])

        for b in bills:
            if (m - 1) % b["step"] != b["offset"]:
                continue
            d = ctx.business_day(y, m, b["day"])
            cents = b["fixed"] if b["fixed"] is not None else _uniform_cents(mrng, b["amount"], scale * b["step"])
            if b["channel"] == "card" and cards:
                card = cards[0]
                ctx.add(card["id"], d, -cents, ctx.text("card_item", b["name"]), b["name"], b["category"],
                        value_date=d - timedelta(days=mrng.randint(0, 2)))
            elif b["channel"] == "card":
                ctx.add(cid, d, -cents, ctx.text("card_payment", b["name"], mrng.randint(10 ** 11, 10 ** 12 - 1),
                                                 d, upi=upi_handle), b["name"], b["category"],
                        value_date=d - timedelta(days=mrng.randint(0, 2)))
            else:
                ctx.add(cid, d, -cents, ctx.text("direct_debit", b["name"], b["ref"], d), b["name"], b["category"],
                        b["iban"])

        month_spend = []
        for cat, cfg, merchants in spending:
            if cfg.get("probability") is not None and mrng.random() >= cfg["probability"]:
                continue
            for _ in range(mrng.randint(*cfg["per_month"])):
                d = rand_day()
                vd = d - timedelta(days=int(mrng.random() * 3))
                name = merchants[int(mrng.random() * len(merchants))]
                cents = _spend_cents(mrng, cfg["amount"], spend_scale)
                if cards and mrng.random() < card_share:
                    acc = _weighted(mrng, cards, card_cum)["id"]
                    text = ctx.text("card_item", name)
                else:
                    acc = cid
                    text = ctx.text("card_payment", name, mrng.randint(10 ** 11, 10 ** 12 - 1), d, upi=upi_handle)
                ctx.add(acc, d, -cents, text, name, cat, value_date=vd)
                month_spend.append((acc, d, cents, name))

        if cash_cfg:
            for _ in range(mrng.randint(*cash_cfg["per_month"])):
                d = rand_day()
                atm = mrng.choice(atm_names)
                ctx.add(cid, d, -_uniform_cents(mrng, cash_cfg["amount"], scale, cash_cfg.get("round")),
                        ctx.text("atm", atm, mrng.randint(1000, 9999), d, card=card_label.get(cid, "")),
                        atm, "cash_withdrawal")

        if month_spend and refund_p and mrng.random() < refund_p:
            acc, d, cents, name = month_spend[int(mrng.random() * len(month_spend))]
            rd = min(d + timedelta(days=mrng.randint(1, 14)), date(y, m, last))
            part = cents if mrng.random() < 0.6 else max(1, int(cents * mrng.uniform(0.2, 0.9)))
            ctx.add(acc, rd, part, ctx.text("refund", name), name, "refund")

        if account_fee:
            d = ctx.business_day(y, m, last)
            ctx.add(cid, d, -account_fee, ctx.text("account_fee"), bank.bank["name"], "fees")
        for card in cards:
            if card["_fee"]:
                d = ctx.business_day(y, m, card["_settle_day"])
                ctx.add(card["id"], d, -card["_fee"], ctx.text("card_fee"), card["bank_name"], "card_fee")

        if savings:
            d = ctx.business_day(y, m, sav_cfg.get("day", 1))
            ctx.add(cid, d, -sav_cents, ctx.text("savings_out", latin, savings["number"][-4:], d), latin,
                    "savings_transfer", savings["iban"])
            ctx.add(savings["id"], d, sav_cents, ctx.text("savings_in", latin, "", d), latin,
                    "savings_transfer", checking["iban"])

        if securities and sec_cents:
            d = ctx.business_day(y, m, sec_cfg.get("day", 1))
            ctx.add(cid, d, -sec_cents, ctx.text("securities_out", bank.bank["name"], sec_ref, d),
                    securities["name"], "securities_purchase", None)
            ctx.add(securities["id"], d, sec_cents, ctx.text("securities_in", latin, sec_ref, d), latin,
                    "securities_purchase", checking["iban"])

    # ---- drop what falls outside the window
    for acc_id, evs in ctx.events.items():
        ctx.events[acc_id] = [e for e in evs if start <= e[0] <= anchor]

    # ---- market features (IL only today): cheques, a foreign-currency account, distress. Each draws from its own
    # RNG, so a customer without them keeps every booking above; markets without `features` never get here.
    features = _market_features(mk, pinned, seed, customer_id)
    in_window = lambda d: start <= d <= anchor   # noqa: E731
    if "cheques" in features:
        conf = features["cheques"]
        frng = random.Random(stable_seed(seed, customer_id, code, "feature", "cheques", "identity"))
        payee = frng.choice(conf["payees"])
        cheque_cents = _uniform_cents(frng, payee["amount"], scale, payee.get("round"))
        cheque_no = frng.randint(10 ** 5, 9 * 10 ** 5)
        deposits = conf.get("deposits") or {}
        payer = frng.choice(deposits["payers"]) if deposits else ""
        for y, m in month_list:
            mrng_c = random.Random(stable_seed(seed, customer_id, code, "feature", "cheques", y, m))
            cheque_no += 1
            d = ctx.business_day(y, m, payee.get("day", 10))
            if in_window(d):
                ctx.add(cid, d, -cheque_cents, ctx.text("cheque", payee["name"], cheque_no, d), payee["name"],
                        payee["category"], event="cheque")
            if deposits and mrng_c.random() < float(deposits.get("probability", 0)):
                d = ctx.business_day(y, m, mrng_c.randint(1, 28))
                if in_window(d):
                    ctx.add(cid, d, _uniform_cents(mrng_c, deposits["amount"], scale, deposits.get("round")),
                            ctx.text("cheque_deposit", payer, mrng_c.randint(10 ** 5, 10 ** 6 - 1), d), payer,
                            "transfer_in", counterparty_iban(code, payer), event="cheque_deposit")
    if "foreign_currency" in features:
        conf = features["foreign_currency"]
        frng = random.Random(stable_seed(seed, customer_id, code, "feature", "foreign_currency"))
        fx_code, rate = frng.choice(conf["currencies"])
        counters["checking"] = counters.get("checking", 0) + 1
        number, iban = bank.new_number(frng)
        fx = {"id": f"{prefix}-checking-{counters['checking']}", "kind": "checking",
              "name": names.get("foreign_checking", names.get("checking", "checking")), "currency": fx_code,
              "bank_id": bank.bank["id"], "bank_name": bank.bank["name"], "bank_code": bank.bank_code,
              "branch": bank.branch, "number": number, "iban": iban, "credit_limit": None, "holdings": [],
              "_opening": _uniform_cents(frng, conf["opening"], 1.0, conf.get("round"))}
        specs.append(fx)
        ctx.events[fx["id"]] = []
        monthly = conf["monthly"]
        for y, m in month_list:
            mrng_f = random.Random(stable_seed(seed, customer_id, code, "feature", "foreign_currency", y, m))
            d = ctx.business_day(y, m, monthly.get("day", 6))
            if mrng_f.random() >= float(monthly.get("probability", 1)) or not in_window(d):
                continue
            local = _uniform_cents(mrng_f, monthly["amount"], scale, monthly.get("round"))
            ctx.add(cid, d, -local, ctx.text("fx_out", fx_code, "", d), latin, "savings_transfer", iban)
            ctx.add(fx["id"], d, int(round(local / float(rate))), ctx.text("fx_in", fx_code, "", d), latin,
                    "savings_transfer", checking["iban"])
    missed: set = set()
    distress = features.get("distress")
    if distress:
        drng = random.Random(stable_seed(seed, customer_id, code, "feature", "distress"))
        previous = add_months(anchor, -1)
        last_full = (previous.year, previous.month)
        complete = month_list[1:-1]   # months wholly inside the window

        def incident_months(count_range) -> list:
            """Months of one kind of incident: always the last complete month (the monthly report's), then others."""
            others = [ym for ym in complete if ym != last_full]
            n = drng.randint(*count_range)
            return sorted(([last_full] if last_full in complete else [])
                          + drng.sample(others, min(max(n - 1, 0), len(others))))

        authority = distress.get("authority", "")
        by_month: dict = {}
        for e in ctx.events[cid]:
            if e[8] == "cheque":
                by_month.setdefault((e[0].year, e[0].month), e)
        returned = 0
        for ym in incident_months(distress["returned_cheques"]):   # NSF: the cheque comes back unpaid, plus a fee
            e = by_month.get(ym)
            d = e[0] + timedelta(days=drng.randint(1, 3)) if e else None
            if not e or not in_window(d):
                continue
            ctx.add(cid, d, -e[2], ctx.text("cheque_returned", e[5], e[4], d), e[5], e[7], event="cheque_returned")
            ctx.add(cid, d, -int(round(float(distress["return_fee"]) * 100)), ctx.text("return_fee"),
                    bank.bank["name"], "fees")
            returned += 1
            if returned == 2 and in_window(d + timedelta(days=1)):   # the second return brings a warning letter
                ctx.add(cid, d + timedelta(days=1), -int(round(float(distress["alert_fee"]) * 100)),
                        ctx.text("alert_notice"), bank.bank["name"], "fees", event="alert_notice")
        debits = {}
        for e in ctx.events[cid]:   # direct debits to a payee's account (not housing or loans)
            if (e[2] < 0 and e[6] and e[8] is None and CATEGORY_KINDS[e[7]] == "regular"
                    and e[7] not in ("rent", "mortgage", "loan_repayment")):
                debits.setdefault((e[0].year, e[0].month), e)
        for ym in incident_months(distress["standing_order_returns"]):
            e = debits.get(ym)
            d = e[0] + timedelta(days=drng.randint(2, 4)) if e else None
            if e and in_window(d):
                ctx.add(cid, d, -e[2], ctx.text("standing_order_returned", e[5], "", d), e[5], e[7], e[6],
                        event="standing_order_returned")
        for y, m in incident_months(distress["cancelled_cheques"]):
            d = ctx.business_day(y, m, drng.randint(2, 26))
            if in_window(d):
                ctx.add(cid, d, -int(round(float(distress["cancel_fee"]) * 100)),
                        ctx.text("cheque_cancelled", "", drng.randint(10 ** 5, 10 ** 6 - 1), d), bank.bank["name"],
                        "fees", event="cheque_cancelled")
        for y, m in incident_months(distress["foreclosures"]):
            d = ctx.business_day(y, m, drng.randint(2, 26))
            if in_window(d):
                ctx.add(cid, d, -_uniform_cents(drng, distress["foreclosure_amount"], scale, 10),
                        ctx.text("foreclosure", authority, drng.randint(10 ** 6, 10 ** 7 - 1), d), authority, "fees",
                        event="foreclosure")
        if loans:
            missed = set(incident_months(distress["missed_instalments"]))

    # ---- loans and mortgages: interest then the instalment, every month in the window
    for spec in loans:
        outstanding = spec["_principal"]
        spec["_opening"] = -outstanding
        out_cat = "loan_repayment" if spec["kind"] == "loan" else "mortgage"
        text_out, text_in = ("loan_out", "loan_in") if spec["kind"] == "loan" else ("mortgage_out", "mortgage_in")
        arrears = 0   # instalments missed (distress, first loan only) and not yet caught up
        for y, m in month_list:
            d = ctx.business_day(y, m, spec["_day"])
            if not start <= d <= anchor:
                continue
            interest = int(round(outstanding * spec["_rate"]))
            ctx.add(spec["id"], d, -interest, ctx.text("interest_charge"), bank.bank["name"], "interest_charge")
            if (y, m) in missed and spec is loans[0]:
                late = max(1, int(round(spec["_payment"] * float(distress["late_interest"]))))
                ctx.add(spec["id"], d, -late, ctx.text("loan_arrears"), bank.bank["name"], "interest_charge",
                        event="loan_arrears")
                outstanding += interest + late
                arrears += spec["_payment"]
                continue
            # after missed instalments the next one is paid together with them (one transfer, event arrears_payment)
            payment = min(spec["_payment"] + arrears, outstanding + interest)
            event = "arrears_payment" if arrears else None
            ctx.add(spec["id"], d, payment, ctx.text("arrears_in" if arrears else text_in, latin, spec["_ref"], d),
                    latin, out_cat, checking["iban"], event=event)
            ctx.add(cid, d, -payment, ctx.text("arrears_out" if arrears else text_out, bank.bank["name"],
                                               spec["_ref"], d), bank.bank["name"], out_cat, spec["iban"], event=event)
            arrears = 0
            outstanding += interest - payment

    # ---- card settlements: month M settles the card's bookings of month M-1
    for card in cards:
        per_month: dict[tuple[int, int], int] = {}
        for e in ctx.events[card["id"]]:
            key = (e[0].year, e[0].month)
            per_month[key] = per_month.get(key, 0) + e[2]
        for (py, pm), (y, m) in zip(month_list, month_list[1:]):
            due = per_month.get((py, pm), 0)
            d = ctx.business_day(y, m, card["_settle_day"])
            if due >= 0 or not start <= d <= anchor:
                continue
            label = card["number"][-4:]
            ctx.add(cid, d, due, ctx.text("card_settlement", card["bank_name"], "", d, card=label),
                    card["bank_name"], "card_settlement")
            ctx.add(card["id"], d, -due, ctx.text("card_settlement_credit", latin, "", d, card=label), latin,
                    "card_settlement")

    # ---- savings interest at each quarter end inside the window
    if savings:
        rate = irng.uniform(*sav_cfg.get("rate", [0.01, 0.02]))
        evs = sorted(ctx.events[savings["id"]], key=lambda e: (e[0], e[1]))
        balance = savings["_opening"] = _uniform_cents(irng, sav_cfg.get("opening", [1000, 5000]), scale, 10)
        i = 0
        for y, m in month_list:
            if m % 3:
                continue
            qd = ctx.business_day(y, m, 31)
            while i < len(evs) and evs[i][0] <= qd:
                balance += evs[i][2]
                i += 1
            if not start <= qd <= anchor:
                continue
            interest = int(round(balance * rate / 4))
            if interest > 0:
                ctx.add(savings["id"], qd, interest, ctx.text("interest_income", bank.bank["name"], "", qd),
                        bank.bank["name"], "interest_income")
                balance += interest

    # ---- securities holdings: balance == sum(values); opening = value - in-window purchases
    if securities:
        purchases = sum(e[2] for e in ctx.events[securities["id"]])
        target = max(_uniform_cents(irng, sec_cfg["value"], scale), int(purchases * 1.5))
        k = min(irng.randint(*sec_cfg.get("positions", [2, 6])), len(mk["securities"]))
        picks = irng.sample(mk["securities"], k)
        weights = [irng.uniform(0.5, 1.5) for _ in picks]
        total_w = sum(weights)
        holdings, value = [], 0
        for sec, w in zip(picks, weights):
            price_c = max(1, int(round(float(sec["price"]) * irng.uniform(0.8, 1.25) * 100)))
            units = max(1, int(round(target * w / total_w / price_c)))
            avg_c = max(1, int(round(price_c * irng.uniform(0.7, 1.15))))
            h = Holding(sec["name"], sec["isin"], Decimal(units), _money(avg_c), _money(price_c), ctx.currency)
            holdings.append(h)
            value += units * price_c
        if value - purchases < 0:  # keep the opening depot value non-negative: top up the first position
            extra_units = -(-(purchases - value) // int(holdings[0].price * 100)) + 1
            h0 = holdings[0]
            holdings[0] = Holding(h0.name, h0.isin, h0.units + extra_units, h0.average_price, h0.price, h0.currency)
            value += extra_units * int(h0.price * 100)
        securities["holdings"] = holdings
        securities["_opening"] = value - purchases

    # ---- checking opening balance: never overdrawn inside the window
    chk = sorted(ctx.events[cid], key=lambda e: (e[0], e[1]))
    running = low = 0
    for e in chk:
        running += e[2]
        low = min(low, running)
    base = _uniform_cents(irng, p.get("checking_opening", [500, 3000]), scale)
    checking["_opening"] = max(base, -low + _nice_step(100 * scale) * 100)
    if distress:   # in distress the account dips into its overdraft at its lowest point
        checking["_opening"] = max(0, -low - _uniform_cents(drng, distress["overdraft"], scale, 10))

    # ---- materialise accounts
    accounts = []
    cur = ctx.currency
    for spec in specs:
        aid = spec["id"]
        evs = ctx.events[aid]
        evs.sort(key=lambda e: (e[0], e[1]))
        opening = spec.get("_opening", 0)
        bal = opening
        low = 0
        txs = []
        currency = spec.get("currency", cur)
        for n, (d, _seq, cents, vd, text, cp, cp_iban, cat, event) in enumerate(evs, 1):
            bal += cents
            if bal < low:
                low = bal
            txs.append(Transaction(f"{aid}-{n:05d}", aid, d, vd, _money(cents), currency, text, cp, cp_iban, cat,
                                   _money(bal), event))
        limit = None
        if spec["kind"] == "credit_card":
            limit_c = spec["_limit"]
            if -low * 1.2 > limit_c:
                step = 100000 if limit_c < 10_000_000 else 1_000_000
                limit_c = int(math.ceil(-low * 1.2 / step)) * step
            limit = _money(limit_c)
        accounts.append(Account(
            id=aid, kind=spec["kind"], name=spec["name"], currency=currency, bank_id=spec["bank_id"],
            bank_name=spec["bank_name"], bank_code=spec["bank_code"], branch=spec["branch"], number=spec["number"],
            iban=spec["iban"], owner_name=latin, opening_balance=_money(opening), balance=_money(bal),
            credit_limit=limit, transactions=txs, holdings=spec["holdings"]))

    return Ledger(customer_id=customer_id, market=code, persona=persona_name, owner_name=latin,
                  owner_name_native=native, national_id=national_id, anchor=anchor, months=months,
                  accounts=accounts)
