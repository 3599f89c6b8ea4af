"""Ranking above the providers: canonical URLs for de-duplication, and passage scoring for
web pages (BM25 with IDF over the candidate passages, computed with the store's own tokenizer)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mcp_servers.core.store import bm25

_TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ref_src", "igshid", "_ga")


def canonical_url(url: str) -> str:
    """One spelling per page: lower-case scheme and host, no default port, `www.`, fragment,
    tracking parameters or trailing slash; query parameters sorted."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower() or "http"
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                             if not k.lower().startswith(_TRACKING)))
    path = parts.path.rstrip("/") or ""
    return urlunsplit(("https" if scheme in ("http", "https") else scheme, netloc, path, query, ""))


def lexical_scores(query: str, texts: Sequence[str]) -> list[float]:
    """BM25 of each text for `query`, IDF taken over `texts` themselves."""
    q = bm25.query(query)
    terms = set(q.indices)
    if not texts or not terms:
        return [0.0] * len(texts)
    docs = []
    for text in texts:
        v = bm25.document(text)
        docs.append({i: w for i, w in zip(v.indices, v.values, strict=True) if i in terms})
    df = Counter(i for d in docs for i in d)
    n = len(texts)
    idf = {i: math.log(1 + (n - df[i] + 0.5) / (df[i] + 0.5)) for i in df}
    return [sum(idf[i] * w for i, w in d.items()) for d in docs]
