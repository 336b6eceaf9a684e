"""Topic phrases, grammar and keyword extraction on the kinds of names agents write."""

from __future__ import annotations

import pytest

from memtune.dataset.grammar import gerund, inflect, third_person, with_article
from memtune.dataset.keywords import STOPWORDS, extract_keywords
from memtune.dataset.probes import generate_probes
from memtune.dataset.text import clip_markdown, split_blocks
from memtune.dataset.topics import clean_name, derive_topic


@pytest.mark.parametrize(("verb", "ing", "third"), [
    ("start", "starting", "starts"), ("run", "running", "runs"), ("use", "using", "uses"),
    ("commit", "committing", "commits"), ("push", "pushing", "pushes"), ("apply", "applying", "applies"),
    ("tie", "tying", "ties"),
])
def test_inflection(verb, ing, third):
    assert gerund(verb) == ing
    assert third_person(verb) == third


def test_coordinated_verbs_inflect_together():
    assert inflect("set up and test", "ing") == "setting up and testing"


@pytest.mark.parametrize(("np", "expected"), [
    ("Node version", "the Node version"), ("dependency conflicts", "dependency conflicts"),
    ("scanBoxId", "scanBoxId"), ("Docker", "Docker"), ("backend", "the backend"),
])
def test_articles(np, expected):
    assert with_article(np) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("Critical Commands > Run the Demo", "Run the Demo"),
    ("Model Cache Location (memtune/CLAUDE.md)", "Model Cache Location"),
    ("Python Style: NEVER use print() in library code; return data and let…",
     "NEVER use print() in library code; return data and let"),
    ("**Node version**", "Node version"),
])
def test_clean_name(name, expected):
    assert clean_name(name) == expected


@pytest.mark.parametrize(("name", "content", "category", "np", "vp", "polarity"), [
    ("Start the Backend", "```bash\nyarn start\n```", "command", "starting the backend", "start the backend", "do"),
    ("Never commit .env files", "NEVER commit `.env` files.", "security", "committing .env files",
     "commit .env files", "dont"),
    ("Node Version", "ALWAYS run `nvm use 22` first.", "environment", "the Node version", "run nvm use 22 first", "do"),
    ("Thin CLI Pattern", "The CLI only parses options.", "pattern", "the thin CLI pattern", None, None),
    ("No Timed Assertions", "Speed targets live in benchmarks/.", "testing", "timed assertions", None, None),
    ("Type Hints", "Every public function has type hints.", "code_style", "type hints", None, None),
    ("Security: NEVER commit real credentials; memory files are scanned", "NEVER commit real credentials.",
     "security", "committing real credentials", "commit real credentials", "dont"),
    ("Prefer pathlib", "Prefer `pathlib.Path` over `os.path`.", "code_style", "using pathlib", "use pathlib", "do"),
])
def test_topics(name, content, category, np, vp, polarity):
    t = derive_topic(name, content, category)
    assert (t.np, t.vp, t.polarity) == (np, vp, polarity)


def test_topic_finds_alternatives_situations_and_forbidden_actions():
    t = derive_topic("Frontend dev server", "Run `npm run dev` (NOT yarn start) before opening a PR.", "command")
    assert "yarn start" in t.alternatives
    assert ("before", "opening a PR") in t.situations
    t = derive_topic("Start the backend", "Run `yarn start &`. NEVER run it in the foreground.", "command")
    assert t.forbidden == ["run the backend in the foreground"]


def test_split_blocks_keeps_fences_verbatim():
    content = "Intro text.\n\n```bash\n# not a heading\nmake test\n```\nAfter."
    blocks = split_blocks(content)
    assert [b.kind for b in blocks] == ["text", "code", "text"]
    assert blocks[1].raw == "```bash\n# not a heading\nmake test\n```"
    assert clip_markdown(content * 20, 120).count("```") % 2 == 0


@pytest.mark.parametrize(("content", "must"), [
    ("MUI Lab needs React 19 peer deps: run npm install --legacy-peer-deps.", {"npm install", "--legacy-peer-deps"}),
    ("ALWAYS switch to Node 22 first: nvm use 22. Then run yarn start in background.", {"nvm use 22", "yarn start"}),
    ("```bash\nmake test   # all\nmake test-fast\n```", {"make test", "make test-fast"}),
    ("Add `scanBoxId` to the `Estate` model with `@unique`.", {"scanBoxId", "@unique"}),
    ("lr 2e-4 learned nothing on the 135M model; use 1e-3.", {"2e-4", "1e-3"}),
    ("Config lives in `config/settings.yaml` and `.env.local`.", {"config/settings.yaml", ".env.local"}),
    ("Requests time out after 30 seconds; retry 3 times.", {"30 seconds"}),
])
def test_keywords_are_specific(content, must):
    kws = extract_keywords(content)
    assert must <= set(kws), kws
    assert 1 <= len(kws) <= 5


def test_keywords_never_stopwords_or_redactions():
    content = "Log in as `deploy` with password [REDACTED:password] and token [REDACTED:github-token] on the box."
    kws = extract_keywords(content)
    assert kws and all("REDACTED" not in k.upper() and k.lower() not in STOPWORDS for k in kws)
    assert "deploy" in kws


def test_probe_records_follow_seed_000_layout(guidelines):
    for g in guidelines:
        probes = generate_probes(g, seed=1)
        assert 1 <= len(probes) <= 4, g.name  # 3 topic probes + 1 value probe
        for p in probes:
            assert set(p) >= {"question", "expected_keywords", "context", "guideline_id", "guideline_version",
                              "category", "name"}
            assert 1 <= len(p["expected_keywords"]) <= 5
            assert all(k in g.content.replace("`", "") or k in g.content for k in p["expected_keywords"])
            assert p["guideline_id"] == g.id and p["context"]
        assert len({p["question"] for p in probes}) == len(probes)


def test_probe_keywords_are_not_given_away_by_the_question(guidelines):
    from memtune.dataset.keywords import norm

    for g in guidelines:
        for p in generate_probes(g, seed=2):
            assert not [k for k in p["expected_keywords"] if norm(k) in norm(p["question"])], p


def test_fences_are_what_markdown_it_calls_fences():
    """Code blocks come from the same parser ingest cut the note with, so edge cases agree."""
    from memtune.dataset.text import split_blocks

    stray = "Run the flaky test: ```bash\npytest tests/x.py -p no:randomly\n```"
    assert [b.kind for b in split_blocks(stray)] == ["text"]  # a ``` line closing nothing is prose
    quoted = "Note:\n\n> ```\n> quoted code\n> ```\n"
    assert [b.kind for b in split_blocks(quoted)] == ["text"]
    listed = "- Start it:\n\n  ```sh\n  make up\n  ```\n- Then open the app."
    blocks = split_blocks(listed)
    assert [b.kind for b in blocks] == ["text", "code", "text"]
    assert blocks[1].lang == "sh" and blocks[1].text == "make up" and blocks[1].raw == "```sh\nmake up\n```"
    tilde = "Intro.\n~~~python title=x\nprint(1)\n~~~\nAfter."
    assert [(b.kind, b.lang) for b in split_blocks(tilde)] == [("text", ""), ("code", "python"), ("text", "")]
    unclosed = "Intro.\n```js\nconsole.log(1)\n"
    assert split_blocks(unclosed)[-1].text == "console.log(1)"
