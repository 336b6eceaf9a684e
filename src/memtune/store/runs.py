"""The ingest log: one row per ``memtune ingest`` run and where secrets were redacted.

A mixin of GuidelineStore (store.py). Findings keep file, line and detector type only —
never the value.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from memtune.store import schema
from memtune.store.reads import _G, _V, _now


class IngestLog:
    """start_run / finish_run / record_findings / findings, plus store-wide counts."""

    def _conn(self) -> AbstractContextManager[sa.Connection]:  # pragma: no cover - provided by GuidelineStore
        raise NotImplementedError

    def start_run(self, paths: list[str]) -> int:
        with self._conn() as c:
            return c.execute(
                schema.ingest_runs.insert().values(
                    started_at=_now(), paths_json=json.dumps(paths, ensure_ascii=False)
                )
            ).inserted_primary_key[0]

    def finish_run(self, run_id: int, summary: dict[str, Any]) -> None:
        with self._conn() as c:
            c.execute(
                schema.ingest_runs.update()
                .where(schema.ingest_runs.c.id == run_id)
                .values(finished_at=_now(), summary_json=json.dumps(summary, ensure_ascii=False, default=str))
            )

    def record_findings(self, run_id: int, findings: list[tuple[str, int | None, str]]) -> None:
        """Store (file, line, type) of each redacted secret — never the value."""
        if not findings:
            return
        with self._conn() as c:
            c.execute(
                schema.secret_findings.insert(),
                [
                    {"run_id": run_id, "file": f, "line": ln, "secret_type": t, "created_at": _now()}
                    for f, ln, t in findings
                ],
            )

    def findings(self, run_id: int | None = None) -> list[dict[str, Any]]:
        t = schema.secret_findings
        q = sa.select(t.c.run_id, t.c.file, t.c.line, t.c.secret_type).order_by(t.c.id)
        if run_id is not None:
            q = q.where(t.c.run_id == run_id)
        with self._conn() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def stats(self) -> dict[str, int]:
        with self._conn() as c:
            total = c.execute(sa.select(sa.func.count()).select_from(_G)).scalar_one()
            active = c.execute(
                sa.select(sa.func.count()).select_from(_G).where(_G.c.is_active.is_(True))
            ).scalar_one()
            versions = c.execute(sa.select(sa.func.count()).select_from(_V)).scalar_one()
        return {"guidelines": total, "active": active, "versions": versions}
