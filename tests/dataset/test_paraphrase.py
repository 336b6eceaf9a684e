"""Paraphrasing through an OpenAI-compatible endpoint: used, cached, and skipped gracefully when it fails."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from memtune.dataset import ExportConfig, export_guidelines_as_lora
from memtune.dataset.paraphrase import Paraphraser


class FakeLLM:
    """A tiny /v1/chat/completions server that counts calls (or fails on purpose)."""

    def __init__(self, status: int = 200) -> None:
        self.calls: list[dict] = []
        self.status = status
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.calls.append({"path": self.path, "body": body})
                if owner.status != 200:
                    self.send_response(owner.status)
                    self.end_headers()
                    return
                question = body["messages"][0]["content"].split("Question: ", 1)[1]
                topic = question.split("about ", 1)[-1].rstrip("?")
                text = (f"1. How does our team handle {topic}?\n2. Quick one: what's the deal with {topic}?\n"
                        f"3. {question}\n- Could you explain {topic} to me?")
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def questions(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        out.append(rec["messages"][1]["content"])
    return out


def test_paraphrases_are_used_and_cached(store, tmp_path):
    cache = tmp_path / "cache"
    with FakeLLM() as llm:
        cfg = dict(paraphrase_url=llm.url, paraphrase_model="tiny-llm", paraphrase_cache_dir=cache,
                   examples_per_guideline=6)
        first = export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / "a", **cfg))
        assert first.success and llm.calls and llm.calls[0]["path"] == "/v1/chat/completions"
        assert llm.calls[0]["body"]["model"] == "tiny-llm"
        n_calls = len(llm.calls)
        assert first.stats["paraphrase"]["calls"] == n_calls
        qs = questions(Path(first.files["train"])) + questions(Path(first.files["eval"]))
        assert any(q.startswith("How does our team handle") for q in qs)
        assert not any(q.startswith(("1.", "-", "3.")) for q in qs), "numbering stripped"
        second = export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / "b", **cfg))
        assert len(llm.calls) == n_calls, "a rerun makes no new calls"
        assert second.stats["paraphrase"]["cache_hits"] == n_calls
        assert second.stats["fingerprint"] == first.stats["fingerprint"]
    assert not first.warnings or not any("paraphras" in w for w in first.warnings)


@pytest.mark.parametrize("status", [500, None])
def test_endpoint_failure_falls_back_to_templates(store, tmp_path, status):
    cache = tmp_path / "cache"
    if status is None:  # nothing listening at all
        url = "http://127.0.0.1:9/v1"
        res = export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / "b", paraphrase_url=url,
                                                            paraphrase_model="m", paraphrase_cache_dir=cache))
    else:
        with FakeLLM(status=status) as llm:
            res = export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / "b", paraphrase_url=llm.url,
                                                                paraphrase_model="m", paraphrase_cache_dir=cache))
            assert len(llm.calls) == 3, "gives up after a few consecutive failures"
    assert res.success and res.stats["examples_total"] > 0
    assert any("paraphrasing failed" in w and "templates" in w for w in res.warnings)
    plain = export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / "plain"))
    assert plain.stats["fingerprint"] == res.stats["fingerprint"], "the fallback is exactly the template export"


def test_paraphraser_cleans_and_keys_cache_by_model_and_prompt(tmp_path):
    with FakeLLM() as llm:
        a = Paraphraser(llm.url, "m1", cache_dir=tmp_path)
        out = a.paraphrase("What should I know about the cache lock?", 3)
        assert out == ["How does our team handle the cache lock?", "Quick one: what's the deal with the cache lock?",
                       "Could you explain the cache lock to me?"]
        Paraphraser(llm.url, "m2", cache_dir=tmp_path).paraphrase("What should I know about the cache lock?", 3)
        assert len(llm.calls) == 2, "another model is another cache entry"
        assert a.paraphrase("What should I know about the cache lock?", 3) == out and len(llm.calls) == 2
