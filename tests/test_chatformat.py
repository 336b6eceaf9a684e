"""The chat format has one source: the bundle's train.py is rendered from memtune.chatformat, and
the script, training, evaluation and serving turn the same conversation into the same ids."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from memtune import chatformat
from memtune.dataset import train_script
from memtune.dataset.train_script import render_script

RECORDS = [  # every format a bundle is written in, plus the shapes other tools write
    {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q `<|im_end|>`?"},
                  {"role": "assistant", "content": "A quoting <|im_end|> and <|endoftext|>."}]},
    {"messages": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": None}]},
    {"instruction": "Q?", "input": "I'm in a terminal.", "output": "Run it.", "system": "S"},
    {"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A"}]},
    {"prompt": "S\n\nHuman: Q?\n\nAssistant:", "completion": " A, spaced  "},
    {"prompt": [{"role": "user", "content": "Q?"}], "completion": [{"role": "assistant", "content": "A"}]},
    {"prompt": "Q?", "completion": "A"},
]


def _chatformat_defs() -> dict[str, str]:
    """Name -> source of every function defined in memtune.chatformat."""
    return {name: inspect.getsource(obj) for name, obj in vars(chatformat).items()
            if inspect.isfunction(obj) and obj.__module__ == chatformat.__name__ and obj.__name__ == name}


def _script_segments(text: str) -> dict[str, str]:
    """Name -> source of every top-level function and assignment in a script's text."""
    out: dict[str, str] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = ast.get_source_segment(text, node) + "\n"
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.get_source_segment(text, node)
    return out


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from tests.tiny_model import build_tokenizer

    return build_tokenizer()


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    """The rendered train.py, written to a temp dir and imported from there (not from memtune)."""
    path = tmp_path_factory.mktemp("bundle") / "train.py"
    path.write_text(render_script(), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("rendered_train", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rendered_chat_functions_are_byte_identical_to_the_module():
    text = render_script()
    segments = _script_segments(text)
    defs = _chatformat_defs()
    assert {"to_messages", "user_message", "conversation", "encode_chat", "end_of_turn_ids", "defuse"} <= set(defs)
    for name, source in defs.items():
        assert segments.get(name) == source, f"train.py's {name} differs from memtune.chatformat.{name}"
    assert chatformat.__doc__ not in text  # only the part below the marker is rendered
    assert train_script.chatformat_source() in text  # and all of it, verbatim (constants and comments too)


def test_rendered_training_functions_are_this_modules():
    segments = _script_segments(render_script())
    for fn in train_script.SCRIPT_FUNCTIONS:
        assert segments[fn.__name__] == inspect.getsource(fn)


def test_rendered_constants_match_memtune(script):
    from memtune.models import DEFAULT_SPEC

    for name in ("DEFAULT_SYSTEM_PROMPT", "CONTEXT_MARKER", "CHATML_TEMPLATE", "_ROLES"):
        assert getattr(script, name) == getattr(chatformat, name), name
    assert (script.DEFAULT_PACKAGE, script.DEFAULT_GGUF) == (DEFAULT_SPEC.package, DEFAULT_SPEC.gguf_file)
    assert script.DEFAULT_MODEL == "default"


def test_script_and_memtune_encode_a_conversation_to_the_same_ids(script, tiny_tokenizer):
    from memtune.train.data import tokenize_conversation

    convo = script.to_messages(RECORDS[0])
    assert convo == chatformat.to_messages(RECORDS[0])
    ids = script.encode_chat(tiny_tokenizer, convo[:-1])
    assert ids == chatformat.encode_chat(tiny_tokenizer, convo[:-1])
    assert script.end_of_turn_ids(tiny_tokenizer) == chatformat.end_of_turn_ids(tiny_tokenizer)
    # the quoted `<|im_end|>` stays text: the only turn ends are the system's and the user's
    eot = script.end_of_turn_ids(tiny_tokenizer)[0]
    assert sum(1 for t in ids if t == eot) == 2
    # training's ids start with exactly that prompt
    ex = tokenize_conversation(tiny_tokenizer, convo, [eot])
    assert ex.input_ids[: len(ids)] == ids
    question = script.conversation("Which database?", "I'm new.", "S")
    assert question == chatformat.conversation("Which database?", "I'm new.", "S")
    assert script.encode_chat(tiny_tokenizer, question) == chatformat.encode_chat(tiny_tokenizer, question)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: "-".join(sorted(r)))
def test_script_and_memtune_read_every_record_format_alike(script, record):
    from memtune.dataset import to_messages
    from memtune.train.data import record_to_messages

    assert script.to_messages(record) == to_messages(record) == record_to_messages(record)
    assert script.to_messages(record)[-1]["role"] == "assistant"


def test_rendered_script_runs_without_memtune(tmp_path):
    """The chat format in train.py is standard-library only: with memtune unimportable it still reads records."""
    (tmp_path / "train.py").write_text(render_script(), encoding="utf-8")
    code = ("import json, runpy, sys; sys.modules['memtune'] = None; "
            "m = runpy.run_path('train.py', run_name='bundle'); "
            "print(json.dumps([m['to_messages'](r) for r in json.loads(sys.argv[1])]))")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(RECORDS)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [chatformat.to_messages(r) for r in RECORDS]


def test_chatformat_imports_nothing_from_memtune():
    tree = ast.parse(Path(chatformat.__file__).read_text(encoding="utf-8"))
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m.split(".")[0] == "memtune"]


def test_export_writes_the_rendered_script(tmp_path, sqlite_store):
    from memtune.dataset import ExportConfig, export_guidelines_as_lora
    from memtune.store import GuidelineInput

    sqlite_store.add(GuidelineInput(name="db", content="We use PostgreSQL 16 with pgvector.", category="database"))
    res = export_guidelines_as_lora(sqlite_store, ExportConfig(output_path=tmp_path / "b", examples_per_guideline=2))
    assert res.success, res.error
    assert (tmp_path / "b" / "train.py").read_text(encoding="utf-8") == render_script()
