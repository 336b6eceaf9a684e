"""Evaluation: prove what an adapter learned, next to the base model and a retrieval baseline.

``evaluate(adapter_dir, ...)`` runs probes (held-out phrasings + user files) under the
conditions base, base+rag, adapter and adapter+rag; asks control questions the memory
cannot answer; checks answers for secrets; measures forgetting on general text; and
writes report.json / report.md / report.html. Heavy imports (torch, transformers)
happen only when a model is loaded.
"""

from memtune.evaluate.api import evaluate
from memtune.evaluate.controls import CONTROL_TOPICS, ControlTopic, ControlVerdict, classify_control, select_controls
from memtune.evaluate.forgetting import general_text, text_loss
from memtune.evaluate.leaks import LeakCheck, check_output
from memtune.evaluate.probes import Probe, load_bundle_probes, load_probe_file
from memtune.evaluate.report import load_report, write_reports
from memtune.evaluate.results import CONDITIONS, TARGETS, EvalReport
from memtune.evaluate.retrieval import RetrievedNote, build_system_prompt, retrieve
from memtune.evaluate.runner import ModelUnderTest, parse_conditions
from memtune.evaluate.scoring import KeywordScore, keyword_recall, keyword_spans, normalize, score_answer

__all__ = [
    "CONDITIONS",
    "CONTROL_TOPICS",
    "TARGETS",
    "ControlTopic",
    "ControlVerdict",
    "EvalReport",
    "KeywordScore",
    "LeakCheck",
    "ModelUnderTest",
    "Probe",
    "RetrievedNote",
    "build_system_prompt",
    "check_output",
    "classify_control",
    "evaluate",
    "general_text",
    "keyword_recall",
    "keyword_spans",
    "load_bundle_probes",
    "load_probe_file",
    "load_report",
    "normalize",
    "parse_conditions",
    "retrieve",
    "score_answer",
    "select_controls",
    "text_loss",
    "write_reports",
]
