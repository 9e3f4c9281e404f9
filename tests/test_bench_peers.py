"""bench/peers.py builds Prism's OpenAPI document and WireMock's stubs from the captured responses: every
operation's route matches the ids the load sends, and answers with the captured bytes."""
import base64
import json
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402

BODY = {"cockpit": {"overview": [1, 2]}, "name": "Jörg"}
CAPS = {
    "fino-cockpit": {"status": 200, "content_type": "application/json",
                     "body_b64": base64.b64encode(json.dumps(BODY).encode()).decode()},
    "token": {"status": 200, "content_type": "application/json",
              "body_b64": base64.b64encode(b'{"accessToken":"x"}').decode()},
}


def test_wiremock_stubs_match_any_id_in_a_placeholder_and_answer_the_captured_bytes(tmp_path):
    root = peers.wiremock_root(CAPS, tmp_path)
    stub = json.loads((root / "mappings" / "fino-cockpit.json").read_text())
    pattern = re.compile(stub["request"]["urlPathPattern"])
    assert stub["request"]["method"] == "GET"
    assert pattern.match("/fino/api/users/0b5c-41/cockpit/person")
    assert not pattern.match("/fino/api/users/a/b/cockpit/person")      # a placeholder is one path segment
    assert json.loads(stub["response"]["body"]) == BODY and stub["response"]["status"] == 200
    health = json.loads((root / "mappings" / "health.json").read_text())
    assert re.match(health["request"]["urlPathPattern"], "/_sandbox/health")


def test_the_prism_document_has_each_operation_with_its_response_as_example(tmp_path):
    spec = json.loads(peers.prism_spec(CAPS, tmp_path / "spec.json").read_text())
    get = spec["paths"]["/fino/api/users/{p1}/cockpit/person"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["example"] == BODY
    assert [p["name"] for p in get["parameters"]] == ["p1"]
    post = spec["paths"]["/open-finance/oauth/token"]["post"]
    assert "application/json" in post["requestBody"]["content"]          # else Prism answers 415 to a JSON body
    assert "/_sandbox/health" in spec["paths"]
