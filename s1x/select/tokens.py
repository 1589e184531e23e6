"""Token counts in the target tokenizer, cached by text hash so a 59K pool is tokenized once."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Callable

BATCH = 512


def cached_token_counts(texts: list[str], tokenize: Callable[[list[str]], list[list[int]]], cache_file: Path) -> list[int]:
    """len(tokenize(text)) for each text; counts persist in an SQLite file per tokenizer."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    hashes = [hashlib.blake2b(t.encode(), digest_size=16).hexdigest() for t in texts]
    with sqlite3.connect(cache_file, timeout=60) as db:
        db.execute("CREATE TABLE IF NOT EXISTS counts (hash TEXT PRIMARY KEY, tokens INTEGER)")
        known = dict(db.execute("SELECT hash, tokens FROM counts"))
        missing = list({h: t for h, t in zip(hashes, texts) if h not in known}.items())
        for start in range(0, len(missing), BATCH):
            batch = missing[start:start + BATCH]
            counts = [len(ids) for ids in tokenize([t for _, t in batch])]
            db.executemany("INSERT OR REPLACE INTO counts VALUES (?, ?)", [(h, n) for (h, _), n in zip(batch, counts)])
            known.update((h, n) for (h, _), n in zip(batch, counts))
    return [known[h] for h in hashes]
