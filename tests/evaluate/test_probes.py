"""Probe files in seed 000's layout: accepted forms, and errors that name the file and line."""

from __future__ import annotations

import json

import pytest

from memtune.errors import InputError, NotFoundError
from memtune.evaluate.probes import (
    Probe,
    bundle_from_lineage,
    coerce_probes,
    load_bundle_probes,
    load_probe_file,
    read_lineage,
    spread_limit,
)

SEED_CASES = [
    {"question": "How do I start the backend service properly?",
     "expected_keywords": ["Node 22", "nvm use", "background", "yarn start"], "context": "Backend service management"},
    {"question": "I'm getting dependency conflicts with MUI Lab. What should I do?",
     "expected_keywords": ["legacy-peer-deps", "npm install", "React 19"], "context": "Frontend dependency resolution"},
]


def test_json_list_jsonl_and_wrapper_are_accepted(tmp_path):
    a = tmp_path / "cases.json"
    a.write_text(json.dumps(SEED_CASES, indent=2))
    b = tmp_path / "cases.jsonl"
    b.write_text("\n".join(json.dumps(c) for c in SEED_CASES) + "\n\n")
    c = tmp_path / "wrapped.json"
    c.write_text(json.dumps({"test_cases": SEED_CASES}))
    for f in (a, b, c):
        probes = load_probe_file(f)
        assert [p.question for p in probes] == [s["question"] for s in SEED_CASES]
        assert probes[0].expected_keywords == ["Node 22", "nvm use", "background", "yarn start"]
        assert probes[1].context == "Frontend dependency resolution"
        assert probes[0].source == str(f) and probes[0].category == "general"
    # ids carry the line each record starts on
    assert [p.id for p in load_probe_file(b)] == ["cases.jsonl:1", "cases.jsonl:2"]
    assert load_probe_file(a)[1].id.startswith("cases.json:")


def test_bad_records_are_all_reported_with_file_and_line(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(
        "[\n"
        '  {"question": "ok?", "expected_keywords": ["fine"]},\n'
        '  {"expected_keywords": ["x"]},\n'
        '  {"question": "one string", "expected_keywords": "yarn start"},\n'
        '  {"question": "empty", "expected_keywords": []},\n'
        '  "just a string"\n'
        "]\n"
    )
    with pytest.raises(InputError) as exc:
        load_probe_file(f)
    msg = exc.value.message
    assert f"{f}:3: 'question' is missing" in msg
    assert f"{f}:4: 'expected_keywords' must be a list of strings" in msg
    assert f"{f}:5: 'expected_keywords' has no usable keyword" in msg
    assert f"{f}:6: expected an object" in msg
    assert "4 bad record(s)" in msg
    assert "expected_keywords" in exc.value.hint


def test_invalid_json_names_the_line(tmp_path):
    f = tmp_path / "broken.jsonl"
    f.write_text('{"question": "a", "expected_keywords": ["b"]}\n{"question": "c", \n')
    with pytest.raises(InputError, match=r"broken\.jsonl:2: not valid JSON"):
        load_probe_file(f)
    g = tmp_path / "broken.json"
    g.write_text('[\n {"question": "a", "expected_keywords": ["b"]},\n {"question": oops}\n]')
    with pytest.raises(InputError, match=r"broken\.json:3: not valid JSON"):
        load_probe_file(g)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_probe_file(tmp_path / "nope.json")
    e = tmp_path / "empty.json"
    e.write_text("[]")
    with pytest.raises(InputError, match="holds no probes"):
        load_probe_file(e)


def test_bundle_probes_keep_lineage_fields(tmp_path):
    from tests.evaluate.tiny import GUIDELINES, write_bundle

    b = write_bundle(tmp_path / "bundle", {"Backend Start": 7})
    probes = load_bundle_probes(b)
    assert len(probes) == len(GUIDELINES)
    assert probes[0].guideline_id == 7 and probes[0].guideline_version == 1
    assert probes[0].category == "commands" and probes[0].name == "Backend Start"
    assert probes[0].id == "bundle:1" and probes[0].source == "bundle"
    with pytest.raises(NotFoundError, match="no probes.jsonl"):
        load_bundle_probes(tmp_path)


def test_bundle_found_from_adapter_lineage(tmp_path):
    from tests.evaluate.tiny import write_bundle

    b = write_bundle(tmp_path / "bundle")
    ad = tmp_path / "adapter"
    ad.mkdir()
    (ad / "memtune.json").write_text(json.dumps({"dataset": {"bundle": str(b), "fingerprint": "x"}}))
    assert bundle_from_lineage(read_lineage(ad), ad) == b
    assert bundle_from_lineage({"dataset": {"bundle": str(tmp_path / "gone")}}, ad) is None
    assert read_lineage(tmp_path / "nothing") == {}
    (ad / "memtune.json").write_text("{oops")
    with pytest.raises(InputError, match="memtune.json"):
        read_lineage(ad)


def test_spread_limit_covers_many_guidelines():
    probes = [Probe(f"q{g}{i}", ["k"], guideline_id=g, id=f"{g}-{i}") for g in range(3) for i in range(4)]
    picked = spread_limit(probes, 5)
    assert [p.guideline_id for p in picked] == [0, 1, 2, 0, 1]
    assert spread_limit(probes, None) == probes and spread_limit(probes, 99) == probes


def test_coerce_probes_from_python():
    ps = coerce_probes([SEED_CASES[0], Probe("q", ["k"])])
    assert ps[0].id == "probe:1" and ps[1].id == "probe:2"
    with pytest.raises(InputError, match="probe 1"):
        coerce_probes([{"question": "no keywords"}])
