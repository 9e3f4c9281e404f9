"""Control API: webhook subscriptions per tenant and provider (the stand-in for a provider dashboard's webhook
setting, e.g. Open Finance's organisation webhook, open_finance.md s.9)."""
from __future__ import annotations

from sandbox import create_app
from sandbox.core.store import MemoryStore

URL = "/_sandbox/webhooks/subscriptions"


def test_subscriptions_are_added_listed_scoped_and_deleted():
    http = create_app({}, store=MemoryStore()).test_client()
    r = http.post(URL, json={"provider": "open_finance", "tenant": "org-a", "url": "https://hooks.example.com/of"})
    assert r.status_code == 201, r.get_data(as_text=True)
    sub = r.get_json()
    assert sub["url"] == "https://hooks.example.com/of" and sub["events"] == ["*"]
    listed = http.get(f"{URL}?provider=open_finance&tenant=org-a").get_json()
    assert [s["id"] for s in listed["subscriptions"]] == [sub["id"]]
    assert http.get(f"{URL}?provider=open_finance&tenant=org-b").get_json()["subscriptions"] == []
    assert http.get(f"{URL}?provider=finleap&tenant=org-a").get_json()["subscriptions"] == []
    assert http.delete(f"{URL}/open_finance/{sub['id']}?tenant=org-b").status_code == 404   # another tenant's
    assert http.delete(f"{URL}/open_finance/{sub['id']}?tenant=org-a").status_code == 204
    assert http.delete(f"{URL}/open_finance/{sub['id']}?tenant=org-a").status_code == 404
    assert http.get(f"{URL}?provider=open_finance&tenant=org-a").get_json()["subscriptions"] == []


def test_bad_subscriptions_are_400_and_store_nothing():
    http = create_app({}, store=MemoryStore()).test_client()
    for body in ({"provider": "nope", "url": "https://x.example.com"}, {"provider": "open_finance"},
                 {"provider": "open_finance", "url": 42}, {"provider": "open_finance", "url": "ftp://x"},
                 {"provider": "open_finance", "url": "https://x.example.com", "events": "all"},
                 {"provider": "open_finance", "url": "https://x.example.com", "tenant": "_sandbox"}):
        r = http.post(URL, json=body)
        assert r.status_code == 400, (body, r.status_code, r.get_data(as_text=True))
    assert http.get(f"{URL}?provider=open_finance").get_json()["subscriptions"] == []
