"""The providers' three pagination styles: parse and validate the query, take one page, render the envelope.

- Open Finance: opaque ``nextPage`` cursor with ``limit`` and ``sort`` (open_finance.md section 6);
- finoOS: ``page`` / ``pageSize`` (or ``page-size``) with a ``context`` or ``metaData`` envelope (fino.md 7, 9, 11);
- finleap: ``count`` / ``offset`` (finleap.md "Transactions", finleap-products.md 5-6).

Each style pages either an ordered sequence (sliced) or a ``core.collections.Collection`` (walked through the store,
never loaded whole for cursor paging). Bad query values raise ValidationFailed (a 400) naming the parameter; a
garbage or tampered cursor is a 400 too, never a 500. Pure functions: no request, no app.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from .collections import Collection, Filter, matcher
from .errors import ValidationFailed

_DIGITS = re.compile(r"[0-9]+")  # ASCII digits only: int() would also take "٣", " 3" and "+3"
_MAX_DIGITS = 9  # larger numbers are refused before int(): no huge ints reach a store LIMIT
_MAX_CURSOR = 2048


def invalid(field: str, message: str, validator: str = "format") -> ValidationFailed:
    """A 400 about one query parameter, shaped like schema validation errors (pointer, field, message, validator)."""
    return ValidationFailed([{"pointer": f"/{field}", "field": field, "message": message, "validator": validator}])


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _raw(query: Mapping, name: str):
    value = query.get(name)
    if isinstance(value, (list, tuple)):  # MultiDict.to_dict(flat=False): the first value wins, as in werkzeug
        value = value[0] if value else None
    return value


def int_param(query: Mapping, name: str, default: int | None, *, minimum: int = 0,
              maximum: int | None = None) -> int | None:
    """A non-negative integer query parameter in [minimum, maximum]; absent or empty -> ``default``."""
    value = _raw(query, name)
    if value is None or value == "":
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        if len(value.lstrip("0")) > _MAX_DIGITS:
            raise invalid(name, f"{name} is too large: {_show(value)}", "maximum")
        number = int(value)
    else:
        raise invalid(name, f"{name} must be an integer, got {_show(value)}", "type")
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise invalid(name, f"{name} must be {bounds}, got {number}", "minimum" if number < minimum else "maximum")
    return number


# -- opaque cursors ---------------------------------------------------------------------------------------------------

# Only for pure use (tests, tools): served lists pass ``secret=ctx.sandbox.cursor_secret(ctx.tenant)``, derived from the
# store's secret key (core/signing.py), so a cursor cannot be forged from public knowledge.
_DEFAULT_SECRET = b"provider-sandbox:cursor"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(payload: str, bind: str, secret: bytes) -> str:
    return _b64(hmac.new(secret or _DEFAULT_SECRET, f"{bind}\x00{payload}".encode(), hashlib.sha256).digest()[:12])


def encode_cursor(position: str | int, *, bind: str = "", secret: bytes = b"") -> str:
    """An opaque, URL-safe cursor for a key (keyset paging) or an offset (sequence paging), MAC'd with ``bind``
    (what the listing was: sort, filters) so a tampered cursor, or one from another listing, is refused."""
    payload = _b64(json.dumps({"k" if isinstance(position, str) else "o": position}, separators=(",", ":"),
                              ensure_ascii=False).encode())
    return f"{payload}.{_mac(payload, bind, secret)}"


def decode_cursor(token: str, *, bind: str = "", secret: bytes = b"", param: str = "nextPage") -> str | int:
    """The key or offset inside a cursor from ``encode_cursor`` with the same ``bind``; anything else -> 400."""
    bad = invalid(param, f"{param} is not a valid cursor (pass the {param} value of the previous response)", "cursor")
    if not isinstance(token, str) or len(token) > _MAX_CURSOR or token.count(".") != 1:
        raise bad
    payload, mac = token.split(".")
    if not hmac.compare_digest(mac.encode(), _mac(payload, bind, secret).encode()):
        raise bad
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:  # bad base64, bad UTF-8, bad JSON: only reachable with our MAC, so a key change; still a 400
        raise bad from None
    if isinstance(claims, dict) and len(claims) == 1:
        if isinstance(claims.get("k"), str):
            return claims["k"]
        offset = claims.get("o")
        if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
            return offset
    raise bad


# -- Open Finance: nextPage cursor -------------------------------------------------------------------------------------

# open_finance.md section 6: query `limit` (number), `nextPage` (opaque cursor from the previous response), `sort`
# (`1` asc / `-1` desc); response {"nextPage": "<cursor>" | null, "items": [...]}, null on the last page.
OPEN_FINANCE_DEFAULT_LIMIT = 100  # (inferred) the docs give no default page size
OPEN_FINANCE_MAX_TRANSACTIONS = 500  # "Transactions: max 500 per page"


@dataclass(frozen=True)
class CursorQuery:
    """Parsed Open Finance paging query. ``limit_given``: the client sent ``limit`` (transactions refuse it with
    dateFrom/dateTo, open_finance.md section 6)."""
    limit: int
    next_page: str | None
    reverse: bool
    limit_given: bool


def parse_cursor_query(query: Mapping, *, default_limit: int = OPEN_FINANCE_DEFAULT_LIMIT,
                       max_limit: int | None = None, over_max: str = "reject") -> CursorQuery:
    """Validate ``limit`` (1..max_limit; ``over_max="clamp"`` caps instead of refusing), ``sort`` and ``nextPage``."""
    if over_max not in ("reject", "clamp"):
        raise ValueError("over_max is 'reject' or 'clamp'")
    clamp = over_max == "clamp" and max_limit is not None
    limit = int_param(query, "limit", None, minimum=1, maximum=None if clamp else max_limit)
    given = limit is not None
    limit = default_limit if limit is None else (min(limit, max_limit) if clamp else limit)
    sort = _raw(query, "sort")
    if sort in (None, "", "1", 1):
        reverse = False
    elif sort in ("-1", -1):
        reverse = True
    else:
        raise invalid("sort", f"sort must be 1 (ascending) or -1 (descending), got {_show(sort)}", "enum")
    token = _raw(query, "nextPage")
    if token is not None and not isinstance(token, str):
        raise invalid("nextPage", "nextPage must be a string", "type")
    return CursorQuery(limit, token or None, reverse, given)


def _bind(q: CursorQuery, bind: str) -> str:
    return f"{'desc' if q.reverse else 'asc'}\x00{bind}"


def cursor_slice(seq: Sequence, q: CursorQuery, *, bind: str = "", secret: bytes = b"") -> tuple[list, str | None]:
    """One page of an ordered sequence (reversed for ``sort=-1``) and the next cursor (an offset), None at the end."""
    offset = 0
    if q.next_page is not None:
        offset = decode_cursor(q.next_page, bind=_bind(q, bind), secret=secret)
        if not isinstance(offset, int):
            raise invalid("nextPage", "nextPage is not a valid cursor for this list", "cursor")
    items = list(seq)[::-1] if q.reverse else list(seq)
    page = items[offset: offset + q.limit]
    end = offset + q.limit
    return page, (encode_cursor(end, bind=_bind(q, bind), secret=secret) if end < len(items) else None)


def cursor_collection(coll: Collection, q: CursorQuery, *, filter: Filter = None, bind: str = "",
                      secret: bytes = b"") -> tuple[list[dict], str | None]:
    """One keyset page of a Collection (store order; descending for ``sort=-1``) and the next cursor."""
    after = None
    if q.next_page is not None:
        after = decode_cursor(q.next_page, bind=_bind(q, bind), secret=secret)
        if not isinstance(after, str):
            raise invalid("nextPage", "nextPage is not a valid cursor for this list", "cursor")
    page = coll.page(after, q.limit, filter=filter, reverse=q.reverse)
    return page.items, (None if page.next is None else encode_cursor(page.next, bind=_bind(q, bind), secret=secret))


def render_next_page(items: list, next_page: str | None, count: int | None = None) -> dict:
    """``{"nextPage", "count"?, "items"}``; ``count`` only where the operation documents it (list_connections)."""
    body: dict = {"nextPage": next_page}
    if count is not None:
        body["count"] = count
    body["items"] = items
    return body


def open_finance_page(source: Sequence | Collection, query: Mapping, *, filter: Filter = None,
                      post_filter: Filter = None, with_count: bool = False,
                      default_limit: int = OPEN_FINANCE_DEFAULT_LIMIT, max_limit: int | None = None,
                      over_max: str = "reject", bind: str = "", secret: bytes = b"") -> dict:
    """Parse, page and render in one call. ``filter`` selects before paging; ``post_filter`` after it: list_connections'
    ``count`` is "items in this page before the status filter" (open_finance.md section 6), so a page may shrink."""
    q = parse_cursor_query(query, default_limit=default_limit, max_limit=max_limit, over_max=over_max)
    if isinstance(source, Collection):
        items, nxt = cursor_collection(source, q, filter=filter, bind=bind, secret=secret)
    else:
        match = matcher(filter)
        items, nxt = cursor_slice([x for x in source if match(x)], q, bind=bind, secret=secret)
    count = len(items)
    if post_filter is not None:
        keep = matcher(post_filter)
        items = [x for x in items if keep(x)]
    return render_next_page(items, nxt, count if with_count else None)


# -- finoOS: page / pageSize -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FinoStyle:
    """How one finoOS list pages: its size parameter (None: fixed size), default and bounds, and its envelope."""
    envelope: str                 # "context" or "metaData"
    size_param: str | None
    default_size: int
    min_size: int = 1
    max_size: int | None = None
    pages_field: str = "pages"    # metaData only: "pages" (categorization) or "pageCount" (cockpits)


# fino.md section 7, list_users: query `page` only (a string), 10 per page; {"context": {"client", "count", "page",
# "pageSize", "tenant"}, "users": [...]} -- the example has count 15 with pageSize 10: count is the total.
FINO_CONTEXT = FinoStyle("context", None, 10)
# fino.md get_categorization: `page` (default 1), `pageSize` (default 10); metaData {page, pageSize, pages, totalCount}
FINO_METADATA = FinoStyle("metaData", "pageSize", 10, pages_field="pages")
# fino.md list_cockpits: `page` (default 1), `page-size` (default 20, min 2); metaData {page, pageCount, pageSize,
# totalCount}
FINO_METADATA_COCKPITS = FinoStyle("metaData", "page-size", 20, min_size=2, pages_field="pageCount")


@dataclass(frozen=True)
class PageQuery:
    page: int       # 1-based
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def parse_page_query(query: Mapping, style: FinoStyle) -> PageQuery:
    """Validate ``page`` (>= 1, default 1) and the style's size parameter (its bounds, its default)."""
    page = int_param(query, "page", 1, minimum=1)
    size = style.default_size
    if style.size_param is not None:
        size = int_param(query, style.size_param, style.default_size, minimum=style.min_size, maximum=style.max_size)
    return PageQuery(page, size)


def page_count(total: int, page_size: int) -> int:
    """Pages needed for ``total`` items (0 when there are none)."""
    return math.ceil(total / page_size)


def page_slice(seq: Sequence, q: PageQuery) -> list:
    """The items of page ``q.page`` (empty past the last page)."""
    return list(seq[q.offset: q.offset + q.page_size])


def render_fino_context(items_key: str, items: list, q: PageQuery, total: int, *, client: str, tenant: str) -> dict:
    """``{"context": {client, count (total), page, pageSize, tenant}, <items_key>: [...]}`` (fino.md list_users)."""
    return {"context": {"client": client, "count": total, "page": q.page, "pageSize": q.page_size, "tenant": tenant},
            items_key: items}


def render_fino_metadata(items_key: str, items: list, q: PageQuery, total: int, *, pages_field: str = "pages") -> dict:
    """``{<items_key>: [...], "metaData": {page, pageSize, pages|pageCount, totalCount}}`` (categorization and
    cockpits, fino.md)."""
    return {items_key: items, "metaData": {"page": q.page, "pageSize": q.page_size,
                                           pages_field: page_count(total, q.page_size), "totalCount": total}}


def fino_page(source: Sequence | Collection, query: Mapping, style: FinoStyle, *, items_key: str,
              filter: Filter = None, reverse: bool = False, client: str | None = None,
              tenant: str | None = None) -> dict:
    """Parse, page and render a finoOS list in ``style``; the context envelope also needs ``client`` and ``tenant``."""
    q = parse_page_query(query, style)
    if isinstance(source, Collection):
        items, total = source.window(q.offset, q.page_size, filter, reverse), source.count(filter)
    else:
        match = matcher(filter)
        seq = [x for x in source if match(x)]
        seq = seq[::-1] if reverse else seq
        items, total = page_slice(seq, q), len(seq)
    if style.envelope == "context":
        if client is None or tenant is None:
            raise ValueError("the context envelope needs client and tenant")
        return render_fino_context(items_key, items, q, total, client=client, tenant=tenant)
    return render_fino_metadata(items_key, items, q, total, pages_field=style.pages_field)


# -- finleap: count / offset -------------------------------------------------------------------------------------------

# finleap.md Transactions and finleap-products.md 5-6: `count` (default 1000 in python-figo), `offset`; non-integer
# count/offset -> 400 code 1000 (inferred). count=0 is accepted by the query schema and gives an empty list.
FINLEAP_DEFAULT_COUNT = 1000


@dataclass(frozen=True)
class OffsetQuery:
    count: int
    offset: int


def parse_offset_query(query: Mapping, *, default_count: int = FINLEAP_DEFAULT_COUNT,
                       max_count: int | None = None) -> OffsetQuery:
    """Validate ``count`` (0..max_count, default 1000) and ``offset`` (>= 0, default 0)."""
    return OffsetQuery(int_param(query, "count", default_count, minimum=0, maximum=max_count),
                       int_param(query, "offset", 0, minimum=0))


def offset_slice(seq: Sequence, q: OffsetQuery) -> list:
    return list(seq[q.offset: q.offset + q.count])


def render_finleap(items: list, items_key: str | None = None) -> dict | list:
    """``{<items_key>: [...]}``, or the bare array (list_contracts, finleap-products.md 6) when no key is given."""
    return items if items_key is None else {items_key: items}


def finleap_page(source: Sequence | Collection, query: Mapping, *, items_key: str | None = None,
                 filter: Filter = None, reverse: bool = False, default_count: int = FINLEAP_DEFAULT_COUNT,
                 max_count: int | None = None) -> dict | list:
    """Parse, page and render a finleap list (``reverse``: the order of ``sort=DESC``)."""
    q = parse_offset_query(query, default_count=default_count, max_count=max_count)
    if isinstance(source, Collection):
        items = source.window(q.offset, q.count, filter, reverse)
    else:
        match = matcher(filter)
        seq = [x for x in source if match(x)]
        items = offset_slice(seq[::-1] if reverse else seq, q)
    return render_finleap(items, items_key)

