"""A local Hugging Face Hub serving one repository's files, as huggingface_hub downloads them.

`GET`/`HEAD /{repo}/resolve/{revision}/{path}` answer with what `hf_hub_download` reads: the
commit (`X-Repo-Commit`), the file's SHA-256 as its `ETag` (as the Hub gives LFS files) and its
length; anything else is a 404. Point huggingface_hub at it with `HF_ENDPOINT=fake.base_url`
(read when huggingface_hub is imported, so in a fresh process). `requests` records each
(method, path) served.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.background import BackgroundServer


class FakeHub(BackgroundServer):
    """`with FakeHub("owner/name", "<commit>", folder) as hub:` serves the files under `folder`."""

    def __init__(self, repo: str, revision: str, folder: Path):
        self.repo, self.revision, self.folder = repo, revision, folder
        self.etags = {
            p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*")
            if p.is_file()
        }
        self.requests: list[tuple[str, str]] = []
        super().__init__(Starlette(routes=[Route("/{path:path}", self._resolve, methods=["GET", "HEAD"])]))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _resolve(self, request: Request) -> Response:
        prefix = f"{self.repo}/resolve/{self.revision}/"
        path = request.path_params["path"]
        name = path.removeprefix(prefix)
        if not path.startswith(prefix) or name not in self.etags:
            return PlainTextResponse("Entry not found", 404, headers={"X-Error-Code": "EntryNotFound"})
        self.requests.append((request.method, name))
        return FileResponse(
            self.folder / name, headers={"X-Repo-Commit": self.revision, "ETag": f'"{self.etags[name]}"'}
        )
