"""Names a memory mentions (people, places, things), extracted at write time without a model.

A name is a run of capitalised words ("Sweden", "New York", "Charlotte's Web", "LGBTQ"); one word
that opens a sentence counts only when it is not an everyday word, i.e. not a whole word of the
the text model's (MiniLM's) English vocabulary ("Aurelio says", not "Yesterday we"). The speaker prefix of
each line of a chat ("Caroline: ...", "assistant: ...") is not a mention, and what follows it
opens a sentence. Keys are lower case with possessives dropped, so "Sarah's" and "Sarah" link. They are
stored on the memory (`entities`, a keyword-indexed payload field) and followed at search time
(`retrieval.expand`): a memory that shares a rare name with the first hits is pulled in.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mcp_servers.core import text_weights
from mcp_servers.core.settings import get_settings

from .dates import DATE_WORDS

_STOP = frozenset(
    "i i'm i've i'd i'll you you're he she it it's we we're they me him her us them my your his its our their "
    "this that these those there here a an the and or but if so yes yeah yep nope no hey hi hello wow thanks "
    "thank oh ok okay sure well what who when where why how which lol haha omg congrats cool great nice "
    "in on at for to from with by after before since during last next this".split()
)
_RUN = re.compile(r"[A-Z][\w'’&.-]*(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][\w'’&.-]*)*")
_OPENS = re.compile(r"(?:^|[.!?;\"“(\[]|\n)\s*$")
_SPEAKER = re.compile(r"^[ \t]*[^\W\d_][\w .'-]{0,39}:\s", re.MULTILINE)  # each line of a chat
MAX_ENTITIES = 32


@lru_cache(maxsize=1)
def _everyday() -> frozenset[str]:
    """The whole words of MiniLM's uncased English vocabulary (all the 'openai' embedder needs of that model)."""
    folder = text_weights.locate(text_weights.named_folder(get_settings()), ("vocab.txt",))
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").split()
    return frozenset(w for w in vocab if w.isalpha())


def entities(text: str) -> list[str]:
    """The names `text` mentions, lower case, in order of first mention."""
    body = _SPEAKER.sub(lambda m: "\n" + " " * (len(m.group(0)) - 1), text)
    out: list[str] = []
    for m in _RUN.finditer(body):
        words = [re.sub(r"['’]s$", "", w.rstrip(".-'’,")) for w in m.group(0).split()]
        opens = bool(_OPENS.search(body[: m.start()]))
        while words and (words[0].lower() in _STOP or words[0].lower() in DATE_WORDS):
            words.pop(0)
            opens = False
        if not words or (opens and len(words) == 1 and words[0].lower() in _everyday()):
            continue  # a capital that only starts a sentence
        key = " ".join(words).lower()
        if len(key) > 1 and key not in DATE_WORDS and key not in out:
            out.append(key)
            if len(out) == MAX_ENTITIES:
                break
    return out
