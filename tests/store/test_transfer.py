"""Import/dump round trips and all-or-nothing imports."""

from __future__ import annotations

import io
import json

import pytest
import yaml

from memtune.errors import InputError
from memtune.store import GuidelineFilter, GuidelineInput, GuidelineStore
from memtune.store.transfer import dump, import_file


def _fill(store):
    g = store.add(GuidelineInput(name="a", content="first", category="command", priority=80, tags=["x"]))
    store.edit(g.id, content="second", change_reason="update")
    b = store.add(GuidelineInput(name="b", content="other", examples={"good": ["ok"], "bad": ["no"]}))
    store.set_active(b.id, False)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "yaml"])
def test_dump_import_roundtrip_keeps_history(any_store, tmp_path, fmt):
    _fill(any_store)
    path = tmp_path / f"out.{fmt}"
    with path.open("w") as fh:
        assert dump(any_store, fh, fmt, versions=True) == 2
    fresh = GuidelineStore(tmp_path / "fresh.db")
    counts = import_file(fresh, path)
    assert counts == {"added": 2, "updated": 0, "unchanged": 0}
    a = fresh.get_by_name("a")
    full = fresh.get(a.id, with_versions=True)
    assert [v.content for v in full.versions] == ["first", "second"]
    assert a.priority == 80 and a.tags == ["x"] and a.category == "command"
    b = fresh.get_by_name("b")
    assert not b.is_active and b.examples == {"good": ["ok"], "bad": ["no"]}
    # importing again is a no-op
    assert import_file(fresh, path) == {"added": 0, "updated": 0, "unchanged": 2}


def test_dump_layout_has_seed_fields(sqlite_store):
    _fill(sqlite_store)
    buf = io.StringIO()
    dump(sqlite_store, buf, "json", GuidelineFilter(active_only=False))
    rec = json.loads(buf.getvalue())[0]
    for key in ("id", "scope_type", "scope_id", "name", "category", "priority", "is_active", "tags", "content", "rationale", "examples", "version", "sources"):
        assert key in rec


def test_import_accepts_camel_case_and_wrapper(sqlite_store, tmp_path):
    p = tmp_path / "g.yaml"
    p.write_text(yaml.safe_dump({"guidelines": [{"name": "TS strict", "content": "Enable strict mode", "scopeType": "global", "isActive": True, "priority": 95, "category": "code_style", "tags": ["typescript"]}]}))
    import_file(sqlite_store, p)
    g = sqlite_store.get_by_name("TS strict", "global")
    assert g.priority == 95 and g.scope_type == "global"


def test_bad_import_lists_every_problem_and_writes_nothing(sqlite_store, tmp_path):
    sqlite_store.add(GuidelineInput(name="existing", content="keep me"))
    p = tmp_path / "bad.jsonl"
    p.write_text(
        json.dumps({"name": "ok", "content": "fine"}) + "\n"
        + json.dumps({"name": "", "content": "x"}) + "\n"
        + json.dumps({"name": "p", "content": "y", "priority": 500}) + "\n"
        + json.dumps({"name": "existing", "content": ""}) + "\n"
    )
    with pytest.raises(InputError) as exc:
        import_file(sqlite_store, p)
    msg = exc.value.message
    assert "bad.jsonl:2" in msg and "bad.jsonl:3" in msg and "bad.jsonl:4" in msg and "priority 500" in msg
    assert "nothing was imported" in msg
    assert [g.name for g in sqlite_store.query()] == ["existing"]
    assert sqlite_store.get_by_name("existing").content == "keep me"


def test_invalid_json_names_line(sqlite_store, tmp_path):
    p = tmp_path / "broken.jsonl"
    p.write_text('{"name": "a", "content": "b"}\n{not json}\n')
    with pytest.raises(InputError, match=r"broken.jsonl:2: invalid JSON"):
        import_file(sqlite_store, p)


def test_unknown_suffix(sqlite_store, tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("[]")
    with pytest.raises(InputError, match="cannot tell the format"):
        import_file(sqlite_store, p)
