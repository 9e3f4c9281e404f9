"""Collections: provider resources kept one per key in the store, with load-or-404, create, patch, delete and paging.

A ``Collection`` binds a store collection to a tenant and, optionally, an owner scope (a user, an account...). Scoped
keys are ``<escaped scope>\\x1f<id>``; each scope component is escaped so it never contains the separator, so no
user-chosen id or scope can reach another scope's keys. Ids come from ``core/ids.py`` (deterministic per seed).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, NamedTuple

from .errors import Conflict, NotFound, SandboxError

SEP = "\x1f"  # between scope components and the id; never appears in an escaped component
_BATCH = 500  # the most items one store round trip reads while walking
_COLLECTION_DEFAULT = object()

Filter = Callable[[dict], bool] | Mapping[str, Any] | None


def escape_component(part: str) -> str:
    """Escape one scope component: ``%`` -> ``%25``, separator -> ``%1F`` (injective, separator-free)."""
    if not isinstance(part, str):
        raise TypeError(f"scope components are strings, not {type(part).__name__}")
    return part.replace("%", "%25").replace(SEP, "%1F")


def scope_prefix(scope: str | tuple[str, ...] | list[str] | None) -> str:
    """The key prefix of a scope: every escaped component followed by the separator ("" when unscoped)."""
    if scope is None:
        return ""
    parts = (scope,) if isinstance(scope, str) else tuple(scope)
    return "".join(escape_component(p) + SEP for p in parts)


def merge_patch(old: dict, changes: Mapping) -> dict:
    """``old`` updated with ``changes``: a None value leaves the field unchanged, nested dicts merge the same way."""
    new = dict(old)
    for field, value in changes.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(new.get(field), dict):
            new[field] = merge_patch(new[field], value)
        else:
            new[field] = dict(value) if isinstance(value, Mapping) else value
    return new


def matcher(filter: Filter) -> Callable[[dict], bool]:
    """A predicate from a filter: a callable, or a mapping of field -> required value (None values are ignored)."""
    if filter is None:
        return lambda doc: True
    if callable(filter):
        return filter
    wanted = {k: v for k, v in filter.items() if v is not None}
    return lambda doc: all(doc.get(k) == v for k, v in wanted.items())


class Page(NamedTuple):
    """One page of documents and the cursor of the next page (the last item's key), None on the last page."""
    items: list[dict]
    next: str | None


class Collection:
    """Documents of one kind for one tenant (and scope). Methods take an item's key: its id unless ``key_of`` is set.

    Use one store collection name at one scope depth only (unscoped is depth 0): a shallower scope's prefix also
    covers deeper scopes' keys. Within one depth no scope or id can reach another scope's items.
    """

    def __init__(self, store, ids, clock, tenant: str, name: str, *, scope=None,
                 key_of: Callable[[dict], str] | None = None, id_field: str | None = "id", id_kind: str = "uuid",
                 kind: str | None = None):
        self.store, self.ids, self.clock = store, ids, clock
        self.tenant, self.name = tenant, name
        self.scope = None if scope is None else ((scope,) if isinstance(scope, str) else tuple(scope))
        self.prefix = scope_prefix(self.scope)
        self.key_of = key_of
        self.id_field, self.id_kind = id_field, id_kind
        self.kind = kind or name  # the id sequence (ids.py kind) this collection draws from

    def within(self, *scope: str) -> "Collection":
        """The same collection narrowed to a sub-scope (e.g. user, then account)."""
        return Collection(self.store, self.ids, self.clock, self.tenant, self.name,
                          scope=(self.scope or ()) + scope, key_of=self.key_of, id_field=self.id_field,
                          id_kind=self.id_kind, kind=self.kind)

    def key(self, id: str) -> str:
        """The store key of an item key (scope prefix + key)."""
        if not isinstance(id, str):
            raise TypeError(f"keys are strings, not {type(id).__name__}")
        return self.prefix + id

    def _missing(self, id, not_found) -> SandboxError:
        if isinstance(not_found, SandboxError):
            return not_found
        if isinstance(not_found, type) and issubclass(not_found, SandboxError):
            return not_found()
        return NotFound(not_found, details={"collection": self.name, "id": id})

    # -- single items -----------------------------------------------------------------------------------------------

    def get(self, id: str) -> dict | None:
        return self.store.get(self.tenant, self.name, self.key(id))

    def exists(self, id: str) -> bool:
        return self.store.exists(self.tenant, self.name, self.key(id))

    def load(self, id: str, not_found: SandboxError | type | str | None = None) -> dict:
        """The item, or raise ``not_found`` (an error, an error class, or a NotFound message; default NotFound)."""
        doc = self.get(id)
        if doc is None:
            raise self._missing(id, not_found)
        return doc

    def new_id(self, id_kind: str | None = None) -> str:
        """A fresh deterministic id: UUID v4 or ULID (timestamp from the sandbox clock) from this tenant's sequence."""
        id_kind = id_kind or self.id_kind
        if id_kind == "uuid":
            return self.ids.uuid4(self.tenant, self.kind)
        if id_kind == "ulid":
            return self.ids.ulid(self.tenant, self.kind, self.clock.now(self.tenant))
        raise ValueError(f"id_kind must be 'uuid' or 'ulid', not {id_kind!r}")

    def create(self, doc: Mapping, id: str | None = None, id_field: Any = _COLLECTION_DEFAULT,
               id_kind: str | None = None, conflict: SandboxError | str | None = None) -> dict:
        """Store a new item and return it. Its id: ``id``, else ``doc[id_field]``, else a fresh one; written into
        ``doc[id_field]`` (``id_field=None``: not written). An existing key raises Conflict (first writer wins)."""
        id_field = self.id_field if id_field is _COLLECTION_DEFAULT else id_field
        if id is None and id_field is not None:
            id = doc.get(id_field)
        if id is None:
            id = self.new_id(id_kind)
        doc = dict(doc)
        if id_field is not None:
            doc[id_field] = id
        key = self.key_of(doc) if self.key_of else id
        if not self.store.add(self.tenant, self.name, self.key(key), doc):
            if isinstance(conflict, SandboxError):
                raise conflict
            raise Conflict(conflict or f"{self.name} {key} already exists",
                           details={"collection": self.name, "id": key})
        return doc

    def put(self, id: str, doc: Mapping) -> dict:
        """Create or replace an item."""
        doc = dict(doc)
        self.store.put(self.tenant, self.name, self.key(id), doc)
        return doc

    def patch(self, id: str, changes: Mapping, not_found: SandboxError | type | str | None = None) -> dict:
        """Merge ``changes`` into the item atomically (absent or None = unchanged; the id field never changes)."""
        changes = {k: v for k, v in changes.items() if k != self.id_field}

        def apply(old):
            if old is None:
                raise self._missing(id, not_found)
            return merge_patch(old, changes)

        return self.store.update(self.tenant, self.name, self.key(id), apply)

    def update(self, id: str, fn: Callable[[dict], dict], not_found: SandboxError | type | str | None = None) -> dict:
        """Replace the item with ``fn(item)`` atomically (read-modify-write); missing item -> ``not_found``."""
        def apply(old):
            if old is None:
                raise self._missing(id, not_found)
            return fn(old)

        return self.store.update(self.tenant, self.name, self.key(id), apply)

    def delete(self, id: str) -> bool:
        return self.store.delete(self.tenant, self.name, self.key(id))

    def delete_or_404(self, id: str, not_found: SandboxError | type | str | None = None) -> None:
        """Delete the item or raise ``not_found`` when there was none."""
        if not self.delete(id):
            raise self._missing(id, not_found)

    # -- many items -------------------------------------------------------------------------------------------------

    def items(self, filter: Filter = None, reverse: bool = False, after: str | None = None,
              batch: int = _BATCH) -> Iterator[tuple[str, dict]]:
        """(key, item) pairs in key order (descending when ``reverse``) after key ``after``; reads ``batch`` items
        first, then twice as many per round trip (up to 500) while a filter skips items."""
        match = matcher(filter)
        cursor = None if after is None else self.key(after)
        cut = len(self.prefix)
        batch = max(1, min(batch, _BATCH))
        while True:
            rows, cursor = self.store.page(self.tenant, self.name, prefix=self.prefix, after=cursor, limit=batch,
                                           reverse=reverse)
            batch = min(batch * 2, _BATCH)
            for key, doc in rows:
                if match(doc):
                    yield key[cut:], doc
            if cursor is None:
                return

    def iter(self, filter: Filter = None, reverse: bool = False) -> Iterator[dict]:
        """Every matching item in key order, without loading the whole collection at once."""
        return (doc for _, doc in self.items(filter, reverse))

    def list(self, filter: Filter = None, sort_key: Callable[[dict], Any] | None = None,
             reverse: bool = False) -> list[dict]:
        """Every matching item, in key order or by ``sort_key`` (descending when ``reverse``)."""
        if sort_key is None:
            return list(self.iter(filter, reverse))
        return sorted(self.iter(filter), key=sort_key, reverse=reverse)

    def page(self, cursor: str | None = None, limit: int = 100, filter: Filter = None,
             reverse: bool = False) -> Page:
        """Up to ``limit`` matching items after key ``cursor``; keeps reading past filtered-out items, and looks one
        match ahead so the last page's ``next`` is None."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"page limit must be a positive integer, not {limit!r}")
        found: list[tuple[str, dict]] = []
        for pair in self.items(filter, reverse, after=cursor, batch=limit + 1):
            found.append(pair)
            if len(found) > limit:
                return Page([doc for _, doc in found[:limit]], found[limit - 1][0])
        return Page([doc for _, doc in found], None)

    def window(self, offset: int, size: int, filter: Filter = None, reverse: bool = False) -> list[dict]:
        """Items ``offset`` .. ``offset + size`` of the matching sequence (offset paging: finleap, finoOS)."""
        out: list[dict] = []
        if size <= 0:
            return out
        for i, (_, doc) in enumerate(self.items(filter, reverse, batch=offset + size)):
            if i >= offset:
                out.append(doc)
                if len(out) == size:
                    break
        return out

    def count(self, filter: Filter = None) -> int:
        """How many items (match ``filter``); without a filter the store counts without reading values."""
        if filter is None:
            return self.store.count(self.tenant, self.name, prefix=self.prefix)
        return sum(1 for _ in self.iter(filter))

    def clear(self) -> int:
        """Delete every item of this collection (and scope); returns how many."""
        keys = [key for key, _ in self.items()]
        return sum(self.delete(key) for key in keys)
