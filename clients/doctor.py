"""`alphaavatar doctor`: what is configured, what is missing, and what each missing part disables."""

from __future__ import annotations

import importlib.util
import os
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mcp_servers.core.settings import get_settings

from .registry import available


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def report() -> bool:
    """Print a table of checks; True when nothing essential is missing."""
    s = get_settings()
    rows: list[tuple[str, bool, str, str]] = []

    def check(name: str, ok: bool, detail: str, disables: str = "") -> None:
        rows.append((name, ok, detail, disables))

    check("data root", os.access(s.home.parent if not s.home.exists() else s.home, os.W_OK), str(s.home),
          "everything: set ALPHAAVATAR_HOME to a writable folder")
    check("vector store", True, f"Qdrant server at {s.qdrant_url}" if s.qdrant_url else "Qdrant Edge (embedded)")
    if s.embedder == "openai":
        check("text embeddings", True, f"OpenAI-compatible {s.embedding_model}")
    elif not _has("huggingface_hub"):
        check("text embeddings", False, "not installed", "memory and research search: pip install 'alphaavatar[memory]' "
              "(or [research])")
    else:
        from mcp_servers.core import text_weights

        folder = text_weights.named_folder(s)
        weights = text_weights.find(folder)
        check("text embeddings", weights is not None, f"the model in {weights}" if weights else
              f"ALPHAAVATAR_EMBEDDING_MODEL={folder} is not a folder" if folder else
              "all-MiniLM-L6-v2 is not on this machine: a server's first start downloads it (91 MB)",
              f"memory and research search while offline: {text_weights.HOW_TO_GET}")
    check("LLM", s.llm_enabled, f"{s.llm_model} at {s.llm_base_url or 'api.openai.com'}" if s.llm_enabled else "none",
          "fact extraction (memory stores verbatim), profile_extract, research synthesis (evidence bundle instead):"
          " set ALPHAAVATAR_LLM_MODEL and OPENAI_BASE_URL / OPENAI_API_KEY")
    check("HTTP token", s.token is not None or bool(s.user_tokens), "set" if s.token or s.user_tokens else "none",
          "serving beyond 127.0.0.1: set ALPHAAVATAR_TOKEN")
    check("Tavily", bool(os.environ.get("TAVILY_API_KEY")), "TAVILY_API_KEY set" if os.environ.get("TAVILY_API_KEY")
          else "none", "web search and extract (the local corpus still works): set TAVILY_API_KEY")
    check("voice (resemblyzer)", _has("resemblyzer"), "installed" if _has("resemblyzer") else "missing",
          "speaker identification: pip install 'alphaavatar[persona]'")
    check("faces (dlib)", _has("dlib") and _has("face_recognition_models"), "installed" if _has("dlib") else "missing",
          "face identification: pip install 'alphaavatar[persona]'")
    check("espeak-ng", _has("espeakng_loader"), "bundled library" if _has("espeakng_loader") else "missing",
          "viseme tracks from text (mouth still follows audio loudness): pip install 'alphaavatar[character]'")
    check("LiveKit", all(os.environ.get(k) for k in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")),
          os.environ.get("LIVEKIT_URL") or "none",
          "the voice agent in LiveKit rooms (`alphaavatar chat` still works): set LIVEKIT_URL/API_KEY/API_SECRET")
    check("servers", bool(available()), ", ".join(available()) or "none", "")

    table = Table(title="alphaavatar doctor")
    for col in ("part", "", "configured", "when missing, this is disabled"):
        table.add_column(col)
    for name, ok, detail, disables in rows:
        # escaped: rich would read "[persona]" in "pip install 'alphaavatar[persona]'" as a style tag and drop it
        table.add_row(name, "[green]ok[/]" if ok else "[yellow]missing[/]", escape(detail), "" if ok else escape(disables))
    # Piped output is read by scripts and people alike: never wrap a line mid-sentence.
    Console(width=None if sys.stdout.isatty() else 240).print(table)
    essential = {"data root", "text embeddings", "servers"}
    return all(ok for name, ok, _, _ in rows if name in essential)
