"""Text out of what we fetch or read: HTML (trafilatura), PDF (pypdf), plain text and Markdown."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from mcp_servers.core.errors import UserError

TEXT_TYPES = {"text/plain": "text", "text/markdown": "text", "text/x-markdown": "text",
              "text/html": "html", "application/xhtml+xml": "html", "application/pdf": "pdf"}
SUFFIX_KINDS = {".txt": "text", ".md": "text", ".markdown": "text", ".html": "html", ".htm": "html", ".pdf": "pdf"}


@dataclass
class Extracted:
    title: str
    text: str


def content_kind(content_type: str, url: str) -> str:
    """'html', 'pdf' or 'text' for the Content-Type header `url` answered with; a UserError otherwise."""
    kind = TEXT_TYPES.get(content_type.split(";")[0].strip().lower())
    if kind is None:
        raise UserError(
            f"{url} is {content_type.split(';')[0] or 'of unknown type'}; only HTML, PDF, plain text and "
            "Markdown pages can be read."
        )
    return kind


def content_charset(content_type: str) -> str | None:
    m = re.search(r"charset=([\w.-]+)", content_type or "", re.I)
    return m.group(1) if m else None


def decode(data: bytes, charset: str | None = None) -> str:
    for enc in (charset, "utf-8"):
        if enc:
            try:
                return data.decode(enc)
            except (LookupError, UnicodeDecodeError):
                continue
    return data.decode("latin-1")


def _html(data: bytes, charset: str | None, url: str | None) -> Extracted:
    import trafilatura
    from trafilatura.metadata import extract_metadata

    html = decode(data, charset)
    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=True, favor_recall=True)
    if not text:
        text = trafilatura.html2txt(html)
    meta = extract_metadata(html)
    return Extracted(title=(meta.title if meta and meta.title else ""), text=text or "")


def _pdf(data: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str(reader.metadata.title) if reader.metadata and reader.metadata.title else ""
    except (PyPdfError, ValueError, KeyError) as exc:
        raise UserError(f"This PDF cannot be read ({exc.__class__.__name__}): {exc}") from exc
    return Extracted(title=title, text="\n\n".join(p.strip() for p in pages if p.strip()))


def extract(data: bytes, kind: str, charset: str | None = None, url: str | None = None) -> Extracted:
    """Title and plain text of a document of this kind ('html', 'pdf', 'text')."""
    if kind == "html":
        out = _html(data, charset, url)
    elif kind == "pdf":
        out = _pdf(data)
    else:
        text = decode(data, charset)
        first = next((ln.strip().lstrip("#").strip() for ln in text.splitlines() if ln.strip()), "")
        out = Extracted(title=first[:120], text=text)
    out.text = re.sub(r"[ \t\r\f\v]+\n", "\n", out.text).strip()
    return out
