"""Fixtures for the dataset stage: a realistic memory in a temp store, and the shared tiny
llama + ChatML tokenizer built in code (no network, no real model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtune.store import GuidelineInput, GuidelineStore, Source

# A small memory in the style of seed 000's memory.md (every kind of note the exporter must handle).
GUIDELINES: list[dict] = [
    dict(name="Start the backend", category="command", priority=80, tags=["backend", "node"],
         content="Start the backend in the background after switching Node versions:\n\n"
                 "```bash\nnvm use 22\nyarn start &\n```\n\nNEVER run it in the foreground: you lose the terminal."),
    dict(name="Reset the Local Database", category="command", priority=60, tags=["database"],
         content="```bash\nyarn prisma migrate reset --force\nyarn prisma db seed\n```"),
    dict(name="MUI Lab dependency conflicts", category="gotcha", priority=70, tags=["frontend", "npm"],
         content="MUI Lab still declares React 18 peer deps; with React 19 run `npm install --legacy-peer-deps`. "
                 "The frontend dev server is `npm run dev` (NOT yarn start)."),
    dict(name="Never commit .env files", category="security", priority=95, tags=["security", "git"],
         content="NEVER commit `.env` files; add new variables to `.env.example` and share values through the "
                 "team vault.", rationale="A leaked DATABASE_URL gave write access to production in 2023."),
    dict(name="Node Version", category="environment", priority=90, tags=["node", "backend"],
         content="ALWAYS run `nvm use 22` before `yarn install`; Node 18 breaks the `sharp` build."),
    dict(name="Estate Email Pattern", category="pattern", priority=60, tags=["backend", "prisma"],
         content="Add the email field directly to the `Estate` model with a `@unique` constraint; it is "
                 "editable on both create and update.",
         examples={"good": ["email String @unique  // on model Estate"],
                   "bad": ["model EstateContact { estateId Int  email String }"]}),
    dict(name="Resolver Order", category="architecture", priority=60, tags=["graphql", "backend"],
         content="Generated CRUD resolvers are registered first and custom resolvers last, so frontend mutations "
                 "may hit the generated ones: add the logic to BOTH `EstateResolver` and `EstateCrudResolver`."),
    dict(name="Staging Admin Login", category="context", priority=50, tags=["auth"],
         content="Log in to staging as `admin@example.com` with password [REDACTED:password]."),
    dict(name="Run a single test file", category="testing", priority=50, tags=["testing", "python"],
         content="```bash\n.venv/bin/pytest tests/store/test_store.py -q\n```"),
    dict(name="Learning Rate", category="lesson", priority=55, tags=["training"],
         content="lr 2e-4 for 5 epochs learned nothing on the 135M model; lr 1e-3 did. Start at 1e-3."),
    dict(name="Prefer pathlib", category="code_style", priority=40, tags=["python"],
         content="Prefer `pathlib.Path` over `os.path` for file paths."),
    dict(name="Shared CI cache", category="workflow", priority=50, tags=["ci"], scope_type="org",
         scope_id="acme", content="CI caches `~/.cache/pip` per branch; clear it with `make ci-clean` when "
                                   "dependency installs fail."),
    dict(name="Old deploy script", category="deployment", priority=30, tags=["deploy"], is_active=False,
         content="Deploy with `./deploy.sh prod` from the ops box."),
]


def add_guidelines(store: GuidelineStore, items: list[dict]) -> None:
    for i, item in enumerate(items):
        inp = GuidelineInput(
            name=item["name"], content=item["content"], category=item.get("category", "general"),
            priority=item.get("priority", 50), scope_type=item.get("scope_type", "project"),
            scope_id=item.get("scope_id", "shop"), tags=item.get("tags", []), rationale=item.get("rationale"),
            examples=item.get("examples", {"good": [], "bad": []}), is_active=item.get("is_active", True),
            source=Source(file="memory.md", line=10 + i, kind="memory"),
        )
        store.upsert(inp)


def generated(n: int, start: int = 0) -> list[dict]:
    """``n`` more distinct, plausible guidelines (for no-cap and scale tests)."""
    out = []
    for i in range(start, start + n):
        out.append(dict(name=f"Service {i} port", category=["command", "gotcha", "pattern", "security"][i % 4],
                        priority=40 + i % 50, tags=[f"svc{i % 3}"],
                        content=f"Service {i} listens on port {4000 + i}; start it with `make run-svc-{i}`."))
    return out


@pytest.fixture
def store(tmp_path: Path) -> GuidelineStore:
    s = GuidelineStore(tmp_path / "memtune.db")
    add_guidelines(s, GUIDELINES)
    yield s
    s.close()


@pytest.fixture
def guidelines(store: GuidelineStore) -> list:
    from memtune.store import GuidelineFilter

    return list(store.iter_guidelines(GuidelineFilter()))


def corpus() -> list[str]:
    from memtune.dataset.prompts import DEFAULT_SYSTEM_PROMPT
    from memtune.dataset.questions import PROBE_FAMILIES, TRAIN_FAMILIES

    texts = [g["content"] + " " + g["name"] for g in GUIDELINES] + [DEFAULT_SYSTEM_PROMPT]
    texts += [t for fam in (*TRAIN_FAMILIES.values(), *PROBE_FAMILIES.values()) for t in fam]
    return texts


def build_tiny_llama(path: Path, seed: int = 0) -> Path:
    """The shared tiny llama (tests/tiny_model.py) with a vocabulary trained on this memory and
    the question templates, and room for long retrieval prompts (4096 positions)."""
    from tests.tiny_model import build_model_dir, build_tokenizer

    return build_model_dir(path, build_tokenizer(corpus(), vocab_size=1200, repeat=3), seed=seed,
                           max_position_embeddings=4096)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
