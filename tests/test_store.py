"""The content-addressed store: reuse, recompute on any determining change, nothing half-done."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from s1x.config import DataConfig, Strategy
from s1x.store import Store, stage_key


def _writer(calls: list[str], text: str):
    def compute(out: Path) -> None:
        calls.append(text)
        (out / "result.txt").write_text(text)
    return compute


def test_equal_config_is_reused(tmp_path: Path):
    store, calls = Store(tmp_path), []
    config = {"data": DataConfig(strategy=Strategy.random, size=10, seed=1)}
    first, reused_first = store.get_or_compute("select", config, _writer(calls, "a"))
    second, reused_second = store.get_or_compute("select", {"data": DataConfig(strategy=Strategy.random, size=10, seed=1)}, _writer(calls, "b"))
    assert (reused_first, reused_second) == (False, True)
    assert first == second and calls == ["a"]
    assert (second / "result.txt").read_text() == "a"


@pytest.mark.parametrize("changed", [{"size": 11}, {"seed": 2}, {"strategy": Strategy.longest}])
def test_any_determining_change_recomputes(tmp_path: Path, changed: dict):
    store, calls = Store(tmp_path), []
    base = {"strategy": Strategy.random, "size": 10, "seed": 1}
    first, _ = store.get_or_compute("select", {"data": DataConfig(**base)}, _writer(calls, "a"))
    second, reused = store.get_or_compute("select", {"data": DataConfig(**{**base, **changed})}, _writer(calls, "b"))
    assert not reused and first != second and calls == ["a", "b"]


def test_key_depends_on_stage_and_inputs():
    assert stage_key("train", {"selection": "abc"}) != stage_key("train", {"selection": "abd"})
    assert stage_key("train", {"x": 1}) != stage_key("eval", {"x": 1})
    assert stage_key("train", {"a": 1, "b": 2}) == stage_key("train", {"b": 2, "a": 1})


def test_failed_compute_leaves_nothing(tmp_path: Path):
    store = Store(tmp_path)

    def broken(out: Path) -> None:
        (out / "partial.txt").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.get_or_compute("train", {"x": 1}, broken)
    assert not store.is_done("train", stage_key("train", {"x": 1}))
    assert [p.name for p in (tmp_path / "train").iterdir() if not p.name.endswith(".lock")] == []


KILLED_STAGE = """
import sys, time
from pathlib import Path
from s1x.store import Store
def slow(out):
    (out / "partial.txt").write_text("half")
    print("started", flush=True)
    time.sleep(60)
Store(sys.argv[1]).get_or_compute("train", {"x": 1}, slow)
"""


def test_stage_killed_half_way_is_not_done_and_is_recomputed(tmp_path: Path):
    process = subprocess.Popen([sys.executable, "-c", KILLED_STAGE, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "started"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    store, key = Store(tmp_path), stage_key("train", {"x": 1})
    assert not store.is_done("train", key)
    leftovers = [p for p in (tmp_path / "train").iterdir() if ".tmp-" in p.name]
    assert len(leftovers) == 1 and (leftovers[0] / "partial.txt").exists()

    calls: list[str] = []
    path, reused = store.get_or_compute("train", {"x": 1}, _writer(calls, "whole"))
    assert not reused and calls == ["whole"]
    assert not (path / "partial.txt").exists() and (path / "result.txt").read_text() == "whole"
    assert not [p for p in (tmp_path / "train").iterdir() if ".tmp-" in p.name]


def _entry(store: Store, text: str = "a" * 100) -> Path:
    path, _ = store.get_or_compute("eval", {"x": text}, _writer([], text))
    return path


def _verify(store_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s1x.store", "verify", str(store_dir), *args], capture_output=True, text=True)


def test_an_entry_lists_its_files_sizes_and_hashes(tmp_path: Path):
    import hashlib
    import json

    entry = _entry(Store(tmp_path))
    files = json.loads((entry / "checksums.json").read_text())["files"]
    assert set(files) == {"result.txt", "key.json"}
    assert files["result.txt"] == {"size": 100, "sha256": hashlib.sha256(b"a" * 100).hexdigest()}


def test_a_truncated_entry_is_never_served_but_recomputed(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    store, calls = Store(tmp_path), []
    entry = _entry(store)
    (entry / "result.txt").write_text("a" * 10)
    assert not store.is_done("eval", entry.name)
    again, reused = store.get_or_compute("eval", {"x": "a" * 100}, _writer(calls, "a" * 100))
    assert again == entry and not reused and calls == ["a" * 100] and (again / "result.txt").read_text() == "a" * 100
    assert "result.txt is 10 bytes, the manifest says 100" in caplog.text
    assert [p.name.split("-")[0] for p in entry.parent.glob(f".{entry.name}.damaged-*")] == [f".{entry.name}.damaged"]


def test_verify_names_a_damaged_entry_and_repair_sets_it_aside(tmp_path: Path):
    store = Store(tmp_path)
    good, bad = _entry(store, "b" * 50), _entry(store)
    (bad / "result.txt").write_text("a" * 99 + "b")  # same size: only the hash tells
    assert _verify(tmp_path).returncode == 0
    deep = _verify(tmp_path, "--deep")
    assert deep.returncode == 1 and f"damaged eval/{bad.name}: result.txt does not hash" in deep.stdout
    assert good.name not in deep.stdout
    (bad / "result.txt").write_text("short")
    plain = _verify(tmp_path)
    assert plain.returncode == 1 and f"damaged eval/{bad.name}: result.txt is 5 bytes" in plain.stdout
    assert _verify(tmp_path, "--repair").returncode == 0 and not bad.exists() and good.exists()
    assert _verify(tmp_path, "--deep").returncode == 0


def test_entries_from_before_manifests_are_served_and_never_discarded(tmp_path: Path):
    store = Store(tmp_path)
    entry = _entry(store)
    (entry / "checksums.json").unlink()
    assert store.is_done("eval", entry.name)
    assert store.get_or_compute("eval", {"x": "a" * 100}, _writer([], "x")) == (entry, True)
    result = _verify(tmp_path, "--deep", "--repair")
    assert result.returncode == 0 and "1 written before manifests" in result.stdout and entry.exists()
