"""Optional LLM paraphrasing of questions through any OpenAI-compatible endpoint.

Templates give several phrasing families; an LLM adds wording no template has (research:
more paraphrases per fact → better recall on reworded questions). Answers are cached on
disk, keyed by model + prompt, so a rerun makes no calls. Failures fall back to the
templates; after a few in a row the endpoint is left alone for the rest of the export, so
an unreachable server costs seconds, not one timeout per guideline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from memtune.dataset.text import question_key

PROMPT = (
    "Rewrite the developer question below in {n} different ways that a developer on the same team might "
    "type into a chat with a coding assistant. Keep every technical term, name, command and number exactly "
    "as written. Vary the wording and sentence structure. Output one question per line, nothing else.\n\n"
    "Question: {question}"
)
MAX_CONSECUTIVE_FAILURES = 3


def default_cache_dir() -> Path:
    root = os.environ.get("MEMTUNE_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "paraphrase"
    import platformdirs

    return Path(platformdirs.user_cache_dir("memtune")) / "paraphrase"


class Paraphraser:
    """Paraphrases questions with an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, url: str, model: str, *, cache_dir: str | Path | None = None, timeout: float = 30.0,
                 api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.timeout = timeout
        self.api_key = api_key or os.environ.get("MEMTUNE_PARAPHRASE_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.calls = 0
        self.cache_hits = 0
        self.failures = 0
        self.errors: list[str] = []
        self._consecutive = 0
        self._client: Any = None

    @property
    def disabled(self) -> bool:
        return self._consecutive >= MAX_CONSECUTIVE_FAILURES

    def _cache_path(self, prompt: str) -> Path:
        key = hashlib.sha256(f"{self.model}\n{prompt}".encode()).hexdigest()
        return self.cache_dir / key[:2] / f"{key}.json"

    def paraphrase(self, question: str, n: int) -> list[str]:
        """Up to ``n`` rewordings of ``question``; [] when the endpoint fails (a template fallback)."""
        prompt = PROMPT.format(n=n, question=question)
        path = self._cache_path(prompt)
        if path.is_file():
            try:
                self.cache_hits += 1
                return _clean(json.loads(path.read_text(encoding="utf-8"))["lines"], question, n)
            except (OSError, ValueError, KeyError):
                pass
        if self.disabled:
            self.failures += 1
            return []
        try:
            text = self._call(prompt)
        except Exception as exc:  # noqa: BLE001 - any failure means: use the templates
            self.failures += 1
            self._consecutive += 1
            if len(self.errors) < 5:
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return []
        self._consecutive = 0
        lines = [ln for ln in text.splitlines() if ln.strip()]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"model": self.model, "prompt": prompt, "lines": lines}), encoding="utf-8")
        os.replace(tmp, path)
        return _clean(lines, question, n)

    def _call(self, prompt: str) -> str:
        try:
            import httpx
        except ImportError as exc:  # an optional dependency (memtune[serve] brings it)
            raise RuntimeError("paraphrasing needs httpx: pip install httpx") from exc

        if self._client is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.Client(timeout=self.timeout, headers=headers)
        self.calls += 1
        resp = self._client.post(f"{self.url}/chat/completions", json={
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.8,
        })
        resp.raise_for_status()
        return str(resp.json()["choices"][0]["message"]["content"])

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def summary(self) -> dict[str, Any]:
        return {"calls": self.calls, "cache_hits": self.cache_hits, "failures": self.failures}


def _clean(lines: list[str], original: str, n: int) -> list[str]:
    """Strip numbering/quotes, keep real questions that differ from the original."""
    out: list[str] = []
    seen = {question_key(original)}
    for ln in lines:
        q = re.sub(r"^\s*(?:[-*•]|\d+[.)]|Q\d*:|Question:)\s*", "", ln).strip().strip('"“”').strip()
        if len(q.split()) < 3 or len(q) > 300:
            continue
        k = question_key(q)
        if k in seen:
            continue
        seen.add(k)
        out.append(q)
        if len(out) >= n:
            break
    return out
