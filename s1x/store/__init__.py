"""Content-addressed store of stage outputs.

A stage's output directory is named by a hash of exactly what determines it (its config and
the keys of its inputs). It is built in a hidden temporary directory and renamed into place
only when complete, so a killed job leaves nothing that later counts as done, and a second
run (or a second cell of a sweep) with the same key reuses it instead of recomputing.

On a cluster filesystem the file lock may not hold across hosts, so the store does not rely on it:
a SLURM sweep has one job per key by construction (s1x/graph.py), and where two writers still race
(a user's manual run beside a job), the one that loses the final rename reuses the winner's output.
Beside each key a SLURM sweep keeps a job record (`.<key>.job.json`: job id, state, error), which
is how a later sweep finds a stage already queued and how a report tells a failed stage from a
missing one.

An entry proves itself: its manifest (`checksums.json`, written before the rename) lists every file with its size
and sha256. Reuse checks the sizes each time (cheap); a damaged entry is never served but moved aside
(`.<key>.damaged-*`) and recomputed. `python -m s1x.store verify [--deep] [--repair]` checks a whole store
(s1x/store/__main__.py). Entries written before manifests existed are served as they are, never discarded.
"""
from __future__ import annotations

import dataclasses
import enum
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

KEY_FILE = "key.json"
MANIFEST_FILE = "checksums.json"
JOB_SUFFIX = ".job.json"
log = logging.getLogger("s1x")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def stage_key(stage: str, determining: dict[str, Any]) -> str:
    """A short, stable hash of a stage name and what determines its output."""
    text = json.dumps({"stage": stage, **_plain(determining)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Store:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def is_done(self, stage: str, key: str) -> bool:
        """Whether the entry is there and whole (its files' sizes as its manifest lists them)."""
        path = self.path(stage, key)
        return path.is_dir() and not damage(path)

    def progress(self, stage: str, determining: dict[str, Any]) -> Path:
        """Where a stage that resumes keeps its progress (the evaluation's journal): it outlives an attempt that
        dies and goes once the entry is in place."""
        key = stage_key(stage, determining)
        return self.path(stage, key).parent / f".{key}.progress"

    def get_or_compute(
        self, stage: str, determining: dict[str, Any], compute: Callable[[Path], None]
    ) -> tuple[Path, bool]:
        """Return (output dir, reused). `compute(tmp_dir)` writes the output into tmp_dir.

        A file lock per key makes concurrent cells wait for one computation instead of
        repeating it; leftovers of killed attempts are removed under that lock.
        """
        key = stage_key(stage, determining)
        final = self.path(stage, key)
        if self.is_done(stage, key):
            return final, True
        final.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(final.parent / f".{key}.lock"):
            if final.is_dir() and (problem := damage(final)):
                log.warning("%s %s is damaged (%s): moved aside to %s and computed again", stage, key, problem,
                            set_aside(final).name)
            if final.is_dir():
                return final, True
            for stale in final.parent.glob(f".{key}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = final.parent / f".{key}.tmp-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                compute(tmp)
                (tmp / KEY_FILE).write_text(json.dumps({"stage": stage, **_plain(determining)}, indent=2, sort_keys=True))
                write_manifest(tmp)
                won = rename_unless_done(tmp, final)
                shutil.rmtree(final.parent / f".{key}.progress", ignore_errors=True)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final, not won

    def job_record(self, stage: str, key: str) -> Optional[dict]:
        """The record of the last SLURM job submitted for this key (job_id, state, error, ...), if any."""
        path = self.root / stage / f".{key}{JOB_SUFFIX}"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def update_job_record(self, stage: str, key: str, **fields: Any) -> dict:
        """Merge fields into the key's job record; written whole and renamed, so a reader never sees half of it.

        `job_id` starts a new record: what an earlier job of the key wrote does not carry over.
        """
        path = self.root / stage / f".{key}{JOB_SUFFIX}"
        path.parent.mkdir(parents=True, exist_ok=True)
        old = self.job_record(stage, key) or {}
        record = fields if "job_id" in fields and fields["job_id"] != old.get("job_id") else {**old, **fields}
        tmp = path.parent / f"{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, path)
        return record


def out_of_space(error: BaseException) -> bool:
    """Whether an error (or one it was raised from) is a full disk or quota, whatever library wrote the file
    (safetensors reports it as its own error, with the OS's message)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(words in str(error) for words in ("No space left on device", "Disk quota exceeded")):
            return True
        error = error.__cause__ or error.__context__
    return False


def rename_unless_done(tmp: Path, final: Path) -> bool:
    """Rename a finished tmp directory into place; False (and tmp removed) when another writer got there first.

    Losing counts as reuse, never as a failure: both wrote the same content. Renaming onto a non-empty
    directory raises OSError ENOTEMPTY (or EEXIST), not FileExistsError.
    """
    try:
        os.rename(tmp, final)
        return True
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        return False


def sha256_of(path: str | Path) -> str:
    """The sha256 of a file's content, read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(entry: Path) -> None:
    """List every file of the entry with its size and sha256, in its manifest."""
    files = sorted(p for p in entry.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)
    manifest = {str(p.relative_to(entry)): {"size": p.stat().st_size, "sha256": sha256_of(p)} for p in files}
    (entry / MANIFEST_FILE).write_text(json.dumps({"files": manifest}, indent=2))


def damage(entry: Path, deep: bool = False) -> str:
    """What is wrong with an entry ('' if nothing): a file its manifest lists that is missing, of another size, or
    (deep) of another sha256. An entry without a manifest (written before manifests) has nothing to check."""
    try:
        listed = json.loads((entry / MANIFEST_FILE).read_text())["files"]
    except FileNotFoundError:
        return ""
    except (json.JSONDecodeError, KeyError, TypeError):
        return f"{MANIFEST_FILE} is unreadable"
    for name, expected in listed.items():
        path = entry / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["size"]:
            return f"{name} is {path.stat().st_size} bytes, the manifest says {expected['size']}"
        if deep and sha256_of(path) != expected["sha256"]:
            return f"{name} does not hash to the manifest's sha256"
    return ""


def set_aside(entry: Path) -> Path:
    """Move a damaged entry out of the way (kept, for a look), so its key is computed again."""
    aside = entry.parent / f".{entry.name}.damaged-{uuid.uuid4().hex[:8]}"
    os.rename(entry, aside)
    return aside
