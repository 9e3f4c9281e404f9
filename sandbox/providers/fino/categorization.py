"""finoOS categorization (fino.md section 10 "Categorization"): the category tree, tags per transaction from rules on
counterparty, purpose, GVC and MCC, user patterns, localized descriptions.

For the other areas (stable API): ``tags_for(doc, patterns=None)`` is the pure tagging of one stored transaction
document (everything except ``recurring``, which needs the user's whole history); ``self.transaction_tags(scope,
user_id)`` gives every transaction of a user its full tag list (patterns applied, ``recurring`` added); the tag
names are the constants below. Each analysis run stores the internal result ``categorization-state`` (read it from
``results_so_far``): ``{"history": [[correlationID, creationDate], ...], "items": [[transactionId, accountId, tags,
index into history of the run that last changed these tags], ...]}``, newest booking first. The webhook event
``categorization`` carries what ``GET .../categorization?correlationID=<the run>`` serves (its first page).
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from ...core.yamlio import load_yaml

from ...core.dispatch import Reply
from ...core.errors import NotFound
from ...core.paging import FinoStyle, parse_page_query, render_fino_metadata
from ...ledger.analytics import Booking, categorise, recurring_streams
from ...ledger.generator import FIXTURES
from . import model
from .banking import render_account, render_transaction
from .errors import FinoError
from .platform import CORRELATION_HEADER, berlin_timestamp

# --- the tag vocabulary (fino.md section 10; the tree itself is fixtures/fino/categorization_tree.yaml) ------------
EARNING, SPENDING = "earning", "spending"
FIX, VARIABLE = "fix", "variable"
RECURRING = "recurring"
ATTRIBUTES = (EARNING, SPENDING, FIX, VARIABLE, RECURRING)
SALARY, PENSION, CHILD_BENEFIT, PARENTAL_ALLOWANCE = "salary", "pension", "child-benefit", "parental-allowance"
RENTAL, ALIMONY = "rental", "alimony"
INSURANCE, RENT, GROCERIES, MOBILITY, CLOTHING = "insurance", "rent", "groceries", "mobility", "clothing"
RECREATIONAL, VACATION, CASH_WITHDRAWAL, CREDIT = "recreational", "vacation", "cash-withdrawal", "credit"
CONTRACT, SECURITY_SAVING_PLAN, INTERNAL_TRANSFER = "contract", "security-saving-plan", "internal-transfer"
EARNING_CATEGORIES = (SALARY, PENSION, CHILD_BENEFIT, PARENTAL_ALLOWANCE, RENTAL, ALIMONY)
SPENDING_CATEGORIES = (INSURANCE, RENT, GROCERIES, MOBILITY, CLOTHING, RECREATIONAL, VACATION, CASH_WITHDRAWAL,
                       CREDIT, CONTRACT, SECURITY_SAVING_PLAN)
CATEGORIES = (*EARNING_CATEGORIES, *SPENDING_CATEGORIES, INTERNAL_TRANSFER)
TAGS = (*ATTRIBUTES, *CATEGORIES)
# categories whose amount is fixed by nature (a contract, a wage, a benefit); the rest are variable. Uncategorised
# bookings and internal transfers are fix when they are standing orders (GVC 117 / 152), else variable (inferred).
FIX_CATEGORIES = frozenset((SALARY, PENSION, CHILD_BENEFIT, PARENTAL_ALLOWANCE, RENTAL, ALIMONY, INSURANCE, RENT,
                            CREDIT, CONTRACT, SECURITY_SAVING_PLAN))
STANDING_ORDER_GVC = (117, 152)
DIRECT_DEBIT_GVC = (104, 105, 107)   # SEPA-Lastschrift variants (Einzugsermächtigung, Basis, Firmen)

BERLIN = ZoneInfo("Europe/Berlin")
PATTERNS = f"{model.PROVIDER}.categorization_patterns"   # one document per user: {"ids": {...}, "patterns": [...]}

# --- rules (section 13: German booking texts, GVC, SEPA purpose codes, MCC) -----------------------------------------
# The shared neutral categoriser (sandbox/ledger/analytics.py, fixtures/categorisation.yaml) decides the neutral
# category from counterparty, purpose, GVC and MCC (bank-fetched bookings carry the ledger's own, ``_category``);
# finoOS's categories refine it with these German keywords (searched case-insensitively in purpose, booking text and
# payment partner name).
_CHILD_BENEFIT = re.compile(r"kindergeld|familienkasse", re.I)
_PARENTAL = re.compile(r"elterngeld", re.I)
_ALIMONY = re.compile(r"unterhalt", re.I)
_RENTAL_IN = re.compile(r"\bmiete\b|mieteinnahme|nebenkosten", re.I)
_INSURANCE = re.compile(r"versicherung|krankenkasse|\bhuk\b|huk-coburg|allianz|debeka|\bergo\b|\bdevk\b|"
                        r"barmer|\baok\b|\bdak\b|hannoversche|\bbeitrag\b.*\bpolice\b", re.I)
_CLOTHING = re.compile(r"\bh&m\b|zalando|\bc&a\b|tk maxx|primark|\bzara\b|peek ?& ?cloppenburg|\bdeichmann\b|"
                       r"about you|esprit|s\.oliver|\bkik\b|galeria", re.I)
_CLOTHING_MCC = frozenset((5611, 5621, 5631, 5641, 5651, 5661, 5681, 5691, 5697, 5698, 5699, 5931))
_OVERDRAFT_INTEREST = re.compile(r"sollzinsen|überziehungszinsen|dispozinsen", re.I)   # GVC 805 says "fees" only
_TRAVEL_TRANSPORT = re.compile(r"deutsche bahn|\bdb vertrieb\b|\bbvg\b|\bmvg\b|\bhvv\b|flixbus", re.I)
# neutral ledger category -> finoOS category (None: earning/spending and fix/variable only)
_NEUTRAL = {
    "salary": SALARY, "pension": PENSION, "rent": RENT, "mortgage": CREDIT, "loan_repayment": CREDIT,
    "interest_charge": CREDIT, "utilities": CONTRACT, "communications": CONTRACT, "subscriptions": CONTRACT,
    "insurance": INSURANCE, "groceries": GROCERIES, "restaurants": RECREATIONAL, "coffee": RECREATIONAL,
    "leisure": RECREATIONAL, "fuel": MOBILITY, "public_transport": MOBILITY, "taxi": MOBILITY, "travel": VACATION,
    "cash_withdrawal": CASH_WITHDRAWAL, "securities_purchase": SECURITY_SAVING_PLAN,
    "savings_transfer": INTERNAL_TRANSFER, "card_settlement": INTERNAL_TRANSFER,
}
# SEPA purpose codes (ISO 20022 ExternalPurpose1Code) that name a category outright
_PURPOSE_CODES_IN = {"SALA": SALARY, "PENS": PENSION, "RENT": RENTAL}
_PURPOSE_CODES_OUT = {"RENT": RENT, "INSU": INSURANCE, "LOAR": CREDIT, "ELEC": CONTRACT, "PHON": CONTRACT,
                      "SUBS": CONTRACT, "CCRD": INTERNAL_TRANSFER}


def _norm(text) -> str:
    return " ".join(str(text or "").casefold().split())


def _partner(doc: dict) -> dict:
    return doc.get("paymentPartner") or {}


def transaction_hash(transaction_id: str) -> str:
    """The 40-hex key of ``ids`` in the patterns document: SHA-1 of the transactionId (fino.md section 10 leaves
    the key's meaning undocumented; inferred)."""
    return hashlib.sha1(str(transaction_id).encode()).hexdigest()


def category_of(doc: dict, own_ibans=()) -> str | None:
    """The finoOS category of one stored transaction document, or None (fino.md section 10 list)."""
    amount = Decimal(str(doc.get("amount") or 0))
    partner = _partner(doc)
    name = partner.get("name") or ""
    purpose, booking_text = doc.get("purpose") or "", doc.get("bookingText") or ""
    words = f"{purpose} {booking_text} {name}"
    gvc = doc.get("transactionCode") or None
    mcc = doc.get("merchantCategoryCode") or None
    code = (doc.get("sepaPurposeCode") or "").upper()
    partner_iban = (partner.get("iban") or "").replace(" ", "").upper()
    if partner_iban and partner_iban in own_ibans:
        return INTERNAL_TRANSFER   # a transfer between two accounts of the same user
    try:
        neutral = doc.get("_category") or categorise(name, purpose, amount, mcc=mcc, gvc=gvc) or (
            categorise(name, booking_text, amount, mcc=None, gvc=None) if booking_text else None)
    except (TypeError, ValueError):   # a malformed MCC or GVC decides nothing
        neutral = categorise(name, purpose, amount) or None
    if amount > 0:
        if _CHILD_BENEFIT.search(words):
            return CHILD_BENEFIT
        if _PARENTAL.search(words):
            return PARENTAL_ALLOWANCE
        if _ALIMONY.search(words):
            return ALIMONY
        if neutral in ("salary", "pension"):
            return _NEUTRAL[neutral]
        if code in _PURPOSE_CODES_IN:
            return _PURPOSE_CODES_IN[code]
        if neutral in ("savings_transfer", "card_settlement"):
            return INTERNAL_TRANSFER
        if neutral in ("mortgage", "loan_repayment"):
            return CREDIT   # the instalment arriving on the loan account
        if _RENTAL_IN.search(words):
            return RENTAL
        return None
    if amount == 0:
        return None
    if _OVERDRAFT_INTEREST.search(f"{purpose} {booking_text}"):
        return CREDIT
    if neutral == "insurance" or code == "INSU" or (_INSURANCE.search(words) and neutral in (
            None, "insurance", "subscriptions", "utilities")):
        return INSURANCE
    if neutral == "shopping" or neutral is None:
        try:
            if mcc is not None and int(mcc) in _CLOTHING_MCC:
                return CLOTHING
        except (TypeError, ValueError):
            pass
        if _CLOTHING.search(name) or (neutral is None and _CLOTHING.search(words)):
            return CLOTHING
    if neutral == "travel" and _TRAVEL_TRANSPORT.search(name):
        return MOBILITY
    if neutral == "education":
        return CONTRACT if gvc in DIRECT_DEBIT_GVC else None   # a school fee is a contract, a book is not
    if neutral in _NEUTRAL:
        return _NEUTRAL[neutral]
    if code in _PURPOSE_CODES_OUT:
        return _PURPOSE_CODES_OUT[code]
    return None


def _instant(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp())


def _pattern_matches(pattern: dict, doc: dict) -> bool:
    partner = _partner(doc)
    if pattern["type"] == "name":
        if not partner.get("name") or _norm(partner["name"]) != _norm(pattern["value"]):
            return False
    elif pattern["type"] == "creditorId":
        if not partner.get("creditorId") or partner["creditorId"].strip().upper() != pattern["value"].strip().upper():
            return False
    else:
        return False
    booked = doc.get("bookingDate") or 0
    if pattern.get("since") and booked < _instant(pattern["since"]):
        return False
    if pattern.get("until") and booked > _instant(pattern["until"]):
        return False
    return True


def override_tags(doc: dict, patterns) -> list[str] | None:
    """The user's own tags for ``doc``: an ``ids`` entry for its transaction, else the first matching pattern
    (payment partner name or creditorId within since/until); None when the rules decide."""
    if not patterns:
        return None
    if isinstance(patterns, dict):
        ids, plist = patterns.get("ids") or {}, patterns.get("patterns") or []
    else:
        ids, plist = {}, patterns
    if ids:
        tags = ids.get(transaction_hash(doc["transactionId"]))
        if tags is not None:
            return list(tags)
    for pattern in plist:
        if _pattern_matches(pattern, doc):
            return list(pattern["tags"])
    return None


def _rule_key(doc: dict, own_ibans) -> tuple:
    """Everything ``category_of`` and ``rule_tags`` read: equal keys, equal tags (a per-run cache)."""
    partner = _partner(doc)
    amount = doc.get("amount") or 0
    iban = (partner.get("iban") or "").replace(" ", "").upper()
    return (amount > 0, amount < 0, partner.get("name") or "", doc.get("purpose") or "", doc.get("bookingText") or "",
            doc.get("transactionCode") or None, doc.get("merchantCategoryCode") or None,
            (doc.get("sepaPurposeCode") or "").upper(), bool(iban) and iban in own_ibans, doc.get("_category"))


def rule_tags(doc: dict, own_ibans=(), cache: dict | None = None) -> list[str]:
    """Tags from the rules alone: earning/spending by sign, fix/variable, the category (no ``recurring``).
    ``cache``: a dict shared by the calls of one run (bookings with the same fields get the same tags)."""
    if cache is not None:
        key = _rule_key(doc, own_ibans)
        if key not in cache:
            cache[key] = rule_tags(doc, own_ibans)
        return list(cache[key])
    amount = Decimal(str(doc.get("amount") or 0))
    category = category_of(doc, own_ibans)
    tags = []
    if amount > 0:
        tags.append(EARNING)
    elif amount < 0:
        tags.append(SPENDING)
    if category in FIX_CATEGORIES or (category in (None, INTERNAL_TRANSFER)
                                      and doc.get("transactionCode") in STANDING_ORDER_GVC):
        tags.append(FIX)
    else:
        tags.append(VARIABLE)
    if category:
        tags.append(category)
    return tags


def tags_for(transaction_doc: dict, patterns=None, own_ibans=()) -> list[str]:
    """Tags of one stored transaction document: the user's pattern/ids override when one applies, else the rules
    (``recurring`` excluded: it needs the user's other bookings, see ``Categorization.transaction_tags``).
    ``patterns``: the user's patterns document ({"ids", "patterns"}) or a list of patterns."""
    own = override_tags(transaction_doc, patterns)
    return own if own is not None else rule_tags(transaction_doc, own_ibans)


def _stream_key(doc: dict) -> str | None:
    partner = _partner(doc)
    for field in ("name", "creditorId", "iban"):
        if partner.get(field):
            return f"{field}:{_norm(partner[field])}"
    return None


def _epoch_day(seconds: int):
    """The Berlin calendar day of a booking instant (Unix seconds, section 8)."""
    return datetime.fromtimestamp(seconds, BERLIN).date()


def recurring_flags(docs: list[dict]) -> list[bool]:
    """Per document: does it belong to a recurring stream of one payment partner and direction (weekly .. yearly,
    consistent amounts: the shared ledger analytics' ``recurring_streams``)?"""
    bookings = []
    for n, doc in enumerate(docs):
        key = _stream_key(doc)
        if key is None or not doc.get("amount"):
            continue
        bookings.append(Booking(_epoch_day(doc.get("bookingDate") or 0), Decimal(str(doc["amount"])), "", key, ref=n))
    flags = [False] * len(docs)
    for stream in recurring_streams(bookings, by_category=False):
        for b in stream.bookings:
            flags[b.ref] = True
    return flags


def tag_documents(docs: list[dict], patterns=None, own_ibans=()) -> list[list[str]]:
    """Tags of each of a user's transaction documents, in their order: the user's override (ids, patterns), else
    the rules plus ``recurring`` (after fix/variable) for bookings of a recurring stream."""
    recurring = recurring_flags(docs)
    out, cache = [], {}
    for doc, is_recurring in zip(docs, recurring):
        own = override_tags(doc, patterns)
        if own is not None:
            out.append(own)
            continue
        tags = rule_tags(doc, own_ibans, cache)
        if is_recurring:
            tags.insert(2 if len(tags) > 1 and tags[1] in (FIX, VARIABLE) else len(tags), RECURRING)
        out.append(tags)
    return out


def full_tags(docs: list[dict], patterns=None, own_ibans=()) -> dict[str, list[str]]:
    """transactionId -> tags for all of a user's transaction documents (see ``tag_documents``)."""
    return {doc["transactionId"]: tags for doc, tags in zip(docs, tag_documents(docs, patterns, own_ibans))}


# --- the tree and its descriptions (fixtures/fino/categorization_tree.yaml) ------------------------------------------
TREE_FILE = FIXTURES / "fino" / "categorization_tree.yaml"
LANGUAGES = ("de", "en")          # section 4: "localization in German and English"
DEFAULT_LANGUAGE = "de"           # (inferred) the query parameter is optional
TREE_TYPE, DESCRIPTION_TYPE = "tree", "description"   # (inferred) the reference shows only "type": "string"


def _hash(value) -> str:
    """A change marker (section 10: "the hashes are change markers, not versions"): SHA-1 of canonical JSON."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()


@lru_cache(maxsize=1)
def _tree_fixture() -> dict:
    """The tree fixture, checked against this module's tag constants (a mismatch fails at start-up)."""
    data = load_yaml(TREE_FILE)
    tags = []
    for node in data["nodes"]:
        tags.append(node["tag"])
        tags.extend(node.get("children") or [])
    if sorted(tags) != sorted(TAGS) or len(set(tags)) != len(tags):
        raise ValueError(f"{TREE_FILE}: its tags {sorted(tags)} differ from categorization.TAGS {sorted(TAGS)}")
    missing = [t for t in [data["root"], *tags] for lang in LANGUAGES if lang not in data["descriptions"].get(t, {})]
    if missing:
        raise ValueError(f"{TREE_FILE}: descriptions missing for {sorted(set(missing))}")
    return data


def _node(tag: str, type_: str, level: int, children: list) -> dict:
    return {"children": children, "level": level, "tag": tag, "type": type_}


@lru_cache(maxsize=1)
def category_tree() -> dict:
    """The get_categorization_tree body: {nodes: root node, treeVersionHash, type} (section 10)."""
    data = _tree_fixture()
    nodes = _node(data["root"], "root", 0, [
        _node(n["tag"], n["type"], 1, [_node(c, "category", 2, []) for c in n.get("children") or []])
        for n in data["nodes"]])
    return {"nodes": nodes, "treeVersionHash": _hash(nodes), "type": TREE_TYPE}


def _preorder(node: dict):
    yield node["tag"]
    for child in node["children"]:
        yield from _preorder(child)


@lru_cache(maxsize=len(LANGUAGES))
def tag_descriptions(language: str) -> dict:
    """The get_tag_descriptions body for ``language`` (de | en), tags in tree order, hash per language."""
    texts = _tree_fixture()["descriptions"]
    items = [{"description": texts[t][language][1], "displayName": texts[t][language][0], "name": t}
             for t in _preorder(category_tree()["nodes"])]
    return {"descriptionList": items, "descriptionVersionHash": _hash([language, items]), "language": language,
            "type": DESCRIPTION_TYPE}


# --- analysis results ---------------------------------------------------------------------------------------------
STATE = "categorization-state"   # internal result kind: every transaction's tags and the run that last changed them
RESULT = "categorization"        # the webhook event's data (section 11)
PAGING = FinoStyle("metaData", "pageSize", 10, pages_field="pages")   # section 10: page 1, pageSize 10 by default
MAX_PATTERNS, MAX_IDS = 1000, 10000   # sandbox bounds (inferred)


def invalid(message: str) -> FinoError:
    return FinoError(message, type="invalidInput", status=400)


def not_found(message: str) -> FinoError:
    return FinoError(message, type="notFound", status=404)


def _newest_first(docs: list[dict]) -> list[dict]:
    return sorted(docs, key=lambda t: (t.get("bookingDate") or 0, t["transactionId"], t["accountId"]), reverse=True)


def state_items(state: dict, correlation_id: str | None = None) -> list[dict]:
    """The categorization entries of a stored state (newest booking first), optionally only those whose tags were
    added or changed by run ``correlation_id`` or a newer one; 404 for a run the state does not know."""
    history = state["history"]
    since = 0
    if correlation_id is not None:
        index = next((i for i, (cid, _) in enumerate(history) if cid == correlation_id), None)
        if index is None:
            raise not_found(f"Unknown correlationID {correlation_id} for this user")
        since = index
    return [{"accountId": aid, "creationDate": history[by][1], "tags": tags, "transactionId": tid}
            for tid, aid, tags, by in state["items"] if by >= since]


def page_of(items: list[dict], query) -> dict:
    """One page of ``items`` in the metaData envelope; a page past the last one is 400 invalidInput (inferred)."""
    q = parse_page_query(query, PAGING)
    pages = -(-len(items) // q.page_size)
    if q.page > max(pages, 1):
        raise invalid(f"page {q.page} is out of range: there are {pages} pages of {q.page_size}")
    return render_fino_metadata("categorization", items[q.offset:q.offset + q.page_size], q, len(items))


def _parse_time(text: str, field: str) -> datetime:
    """An RFC 3339 instant (section 13: query since/until RFC3339); 400 otherwise."""
    if not isinstance(text, str) or not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", text):
        raise invalid(f"{field}: {text!r} is not an RFC3339 timestamp")
    try:
        return datetime.fromisoformat(re.sub(r"[Zz]$", "+00:00", text[:19] + re.sub(r"^\.\d+", "", text[19:])))
    except ValueError:
        raise invalid(f"{field}: {text!r} is not an RFC3339 timestamp") from None


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _check_tags(tags: list, field: str) -> list[str]:
    unknown = [t for t in tags if t not in TAGS]
    if unknown:
        raise invalid(f"{field}: unknown tag {unknown[0]!r} (GET /categorization/tree lists the tags)")
    return list(dict.fromkeys(tags))


def normalise_patterns(body: dict) -> dict:
    """Validate a patterns document beyond its schema and normalise it for storage: known tags only, RFC 3339
    since/until (stored in UTC like the reference's example), since <= until, and no two patterns of one type and
    value whose since/until ranges overlap (an open end reaches infinity); 400 invalidInput otherwise."""
    ids = {}
    for key, tags in (body.get("ids") or {}).items():
        ids[key.lower()] = _check_tags(tags, f"ids/{key}")
    patterns, ranges = [], {}
    for n, raw in enumerate(body.get("patterns") or []):
        where = f"patterns/{n}"
        out = {"type": raw["type"], "value": raw["value"], "tags": _check_tags(raw["tags"], f"{where}/tags")}
        start = end = None
        if raw.get("since") is not None:
            start = _parse_time(raw["since"], f"{where}/since")
            out["since"] = _utc(start)
        if raw.get("until") is not None:
            end = _parse_time(raw["until"], f"{where}/until")
            out["until"] = _utc(end)
        if start is not None and end is not None and start > end:
            raise invalid(f"{where}: since must not be after until")
        key = (raw["type"], _norm(raw["value"]) if raw["type"] == "name" else raw["value"].strip().upper())
        for other, (o_start, o_end) in ranges.get(key, []):
            starts_before_other_ends = start is None or o_end is None or start <= o_end
            if starts_before_other_ends and (end is None or o_start is None or o_start <= end):
                raise invalid(f"{where}: overlaps patterns/{other} ({raw['type']} {raw['value']!r}): the since/until "
                              "ranges of one value must not overlap")
        ranges.setdefault(key, []).append((n, (start, end)))
        patterns.append({k: out[k] for k in ("since", "tags", "type", "until", "value") if k in out})
    return {"ids": ids, "patterns": patterns}


class Categorization:
    def setup(self) -> None:
        """Register the categorization results: the internal state (tags per transaction and the run that set
        them), then the webhook's data; both are computed before the detection and cockpit kinds."""
        _tree_fixture()
        self.register_result(STATE, self._compute_state)
        self.register_result(RESULT, self._compute_event)

    # --- shared with the other areas ----------------------------------------------------------------------------
    def user_transactions(self, scope, user_id: str) -> list[dict]:
        """Every stored transaction document of the user (all accounts)."""
        out = []
        for account in model.accounts(scope, user_id).iter():
            aid = account["accountId"]
            out.extend(t if t.get("accountId") == aid else {**t, "accountId": aid}
                       for t in model.transactions(scope, user_id, aid).iter())
        return out

    def _patterns(self, scope):
        return scope.sandbox.collection(scope.tenant, PATTERNS, id_field="userID")

    def user_patterns(self, scope, user_id: str) -> dict:
        """The user's patterns document {"ids": {...}, "patterns": [...]} (empty before the first PUT)."""
        doc = self._patterns(scope).get(user_id)
        return {"ids": dict((doc or {}).get("ids") or {}), "patterns": list((doc or {}).get("patterns") or [])}

    def own_ibans(self, scope, user_id: str) -> frozenset[str]:
        """IBANs of the user's own accounts: a transfer to or from one of them is an internal transfer."""
        return frozenset((a.get("iban") or "").replace(" ", "").upper()
                         for a in model.accounts(scope, user_id).iter() if a.get("iban"))

    def transaction_tags(self, scope, user_id: str) -> dict[str, list[str]]:
        """transactionId -> tags for every transaction of the user as stored now (patterns applied, ``recurring``
        from the whole history). ``scope``: a request ctx or SimpleNamespace(sandbox, tenant)."""
        return full_tags(self.user_transactions(scope, user_id), self.user_patterns(scope, user_id),
                         self.own_ibans(scope, user_id))

    def forget_user(self, tenant: str, user_id: str) -> None:
        """Platform hook on user deletion: drop the user's patterns."""
        self._patterns(self._scope(tenant)).delete(user_id)

    # --- the analysis result ----------------------------------------------------------------------------------
    def _compute_state(self, scope, user_id: str, run: dict, results: dict) -> dict:
        """Tag every transaction; an entry keeps the run that last changed its tags (the correlationID filter)."""
        previous = None
        last = self.sb.runs.last_completed(scope.tenant, model.ANALYSIS, user_id)
        if last is not None and last["id"] != run["id"]:
            try:
                previous = self.sb.runs.results(scope.tenant, model.ANALYSIS, user_id,
                                                correlation_id=last["id"]).get(STATE)
            except NotFound:   # pruned meanwhile: start a fresh history
                previous = None
        history = [*(previous["history"] if previous else []), [run["id"], berlin_timestamp(run["completed_at"])]]
        now = len(history) - 1
        before = {(aid, tid): (tags, by) for tid, aid, tags, by in (previous["items"] if previous else [])}
        docs = _newest_first(self.user_transactions(scope, user_id))
        tags = tag_documents(docs, self.user_patterns(scope, user_id), self.own_ibans(scope, user_id))
        items = []
        for doc, new in zip(docs, tags):
            old = before.get((doc["accountId"], doc["transactionId"]))
            items.append([doc["transactionId"], doc["accountId"], new, old[1] if old and old[0] == new else now])
        return {"history": history, "items": items}

    def _compute_event(self, scope, user_id: str, run: dict, results: dict) -> dict:
        """The webhook's data: what GET .../categorization?correlationID=<this run> serves (its first page)."""
        return page_of(state_items(results[STATE], run["id"]), {})

    def _state(self, ctx, user_id: str) -> dict:
        return self.read_result(ctx, user_id, STATE, "categorization")

    # --- operations (fino.md section 10 "Categorization") -----------------------------------------------------------
    def get_categorization(self, ctx, user_id):
        state = self._state(ctx, user_id)
        return page_of(state_items(state, ctx.query.get("correlationID") or None), ctx.query)

    def get_categorization_correlation(self, ctx, user_id):
        self.live_user(ctx, user_id)
        self.require_user_scopes(ctx, "categorization")
        return self.correlation(ctx, user_id)

    def get_categorization_patterns(self, ctx, user_id):
        self.live_user(ctx, user_id)
        self.require_user_scopes(ctx, "categorization")
        return self.user_patterns(ctx, user_id)

    def set_categorization_patterns(self, ctx, user_id):
        """Section 10: a complete replacement, then a categorization run (204 with the run's correlation id)."""
        self.live_user(ctx, user_id)
        self.require_user_scopes(ctx, "categorization")
        doc = normalise_patterns(ctx.body or {})
        self._patterns(ctx).put(user_id, {"userID": user_id, **doc})
        run = self.start_analysis(ctx, user_id, trigger="patterns")
        return Reply(None, 204, headers={CORRELATION_HEADER: run["id"]})

    def get_categorized_transactions(self, ctx, user_id):
        """The user's accounts with every transaction and its tags from the newest completed run; a transaction
        added after that run carries ``tags: []`` until the next run (inferred)."""
        state = self._state(ctx, user_id)
        tags = {(aid, tid): t for tid, aid, t, _ in state["items"]}
        out = []
        for account in model.accounts(ctx, user_id).iter():
            aid = account["accountId"]
            txs = _newest_first(list(model.transactions(ctx, user_id, aid).iter()))
            out.append(render_account(account, [
                {**render_transaction(t), "tags": tags.get((aid, t["transactionId"]), [])} for t in txs]))
        return {"accounts": out}

    def get_transaction_tags(self, ctx, user_id, transaction_id):
        """Tags of one of the user's transactions (404 for an id none of its accounts holds)."""
        state = self._state(ctx, user_id)
        for account in model.accounts(ctx, user_id).iter():
            if model.transactions(ctx, user_id, account["accountId"]).get(transaction_id) is not None:
                key = (account["accountId"], transaction_id)
                found = next((t for tid, aid, t, _ in state["items"] if (aid, tid) == key), [])
                return {"tags": found}
        raise not_found("Transaction not found")

    def get_categorization_tree(self, ctx):
        return category_tree()

    def get_tag_descriptions(self, ctx):
        language = ctx.query.get("language") or DEFAULT_LANGUAGE
        if language not in LANGUAGES:
            raise invalid(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
        return tag_descriptions(language)
