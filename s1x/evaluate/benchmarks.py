"""Benchmarks as descriptions (s1x.config.BenchmarkConfig): rows with id, question, answer and kind.

The built-ins are YAML files in conf/benchmark/; a user adds one with `eval.benchmark_specs` (no code),
and `eval.benchmark_files.NAME` points any of them at a local copy with the same fields. Every row is
checked as it is built, so a missing field, an empty file, a gold answer the pattern cannot extract or a
repeated id fails with the benchmark's name, its source and the field, while planning where the source is
local. Multiple-choice questions get their choices shuffled with a fixed seed per question and are graded
by letter, as s1 graded GPQA.
"""
from __future__ import annotations

import dataclasses
import json
import random
import re
import string
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from s1x.config import LOCAL_FORMATS, BenchmarkConfig, BenchmarkKind, ConfigError, EvalConfig, first_line
from s1x.embedded import EMBEDDED_VERSION, generate_benchmark
from s1x.evaluate.latex import boxed
from s1x.store import sha256_of

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "conf" / "benchmark"
EMBEDDED_BENCHMARK_SIZE = 200
CHOICE_SEED = 0
SHOWN = 5  # ids or fields listed in an error


@dataclass(frozen=True)
class Benchmark:
    name: str
    rows: list[dict]
    source: dict[str, Any]  # where the rows came from: hub id and resolved revision, file and sha256, or generator


def builtin_names() -> list[str]:
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.yaml"))


def builtin_spec(name: str, local_file: Optional[str] = None) -> BenchmarkConfig:
    """A built-in description (conf/benchmark/NAME.yaml), read from `local_file` instead of its source if given."""
    if not (BUILTIN_DIR / f"{name}.yaml").is_file():
        raise ConfigError(f"unknown benchmark {name!r}; built in: {builtin_names()}")
    spec = _builtin(name)
    return spec if local_file is None else _from_file(spec, local_file)


@lru_cache(maxsize=None)
def _builtin(name: str) -> BenchmarkConfig:
    """Read once per process: a sweep's planning asks for the same few descriptions for every cell."""
    path = BUILTIN_DIR / f"{name}.yaml"
    try:
        described = OmegaConf.merge(OmegaConf.structured(BenchmarkConfig), OmegaConf.load(path))
        return OmegaConf.to_object(described)  # type: ignore[return-value]
    except Exception as error:  # YAML that does not parse, an unknown key, a missing value: OmegaConf's reason
        raise ConfigError(f"{path}: {first_line(error)}") from None


def _from_file(spec: BenchmarkConfig, local_file: str) -> BenchmarkConfig:
    return dataclasses.replace(spec, file=local_file, hub_id=None, subset=None, generated=False)


def benchmark_spec(name: str, eval_cfg: EvalConfig) -> BenchmarkConfig:
    """The description `eval.benchmarks` means by `name`: the user's own, else the built-in, with its
    source replaced by eval.benchmark_files.NAME where that is given."""
    if name in eval_cfg.benchmark_specs:
        spec = eval_cfg.benchmark_specs[name]
    elif (BUILTIN_DIR / f"{name}.yaml").is_file():
        spec = _builtin(name)
    else:
        known = sorted({*builtin_names(), *eval_cfg.benchmark_specs})
        raise ConfigError(f"eval.benchmarks: unknown benchmark {name!r}; known: {known} "
                          "(add your own: '+eval.benchmark_specs={" f"{name}: {{file: ..., question: ..., answer: ...}}}}')")
    local = eval_cfg.benchmark_files.get(name)
    return spec if local is None else _from_file(spec, local)


@lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_of(path)


def file_sha256(path: str) -> str:
    """The content hash of a local file (cached while its size and mtime stay the same)."""
    stat = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def fingerprint(spec: BenchmarkConfig) -> dict[str, Any]:
    """What decides a benchmark's rows, for the store keys: a local file by its content, not its path, so
    editing the file recomputes and moving it does not; the generator by its version."""
    described = {k: (v.value if isinstance(v, BenchmarkKind) else v) for k, v in dataclasses.asdict(spec).items()
                 if k != "rows"}  # a size for planning, not what decides the rows
    if spec.file is not None:
        described["file"] = file_sha256(spec.file)
    if spec.generated:
        described["generated"] = f"embedded v{EMBEDDED_VERSION}"
    return described


def benchmark_fingerprints(eval_cfg: EvalConfig) -> dict[str, dict[str, Any]]:
    return {name: fingerprint(benchmark_spec(name, eval_cfg)) for name in eval_cfg.benchmarks}


def _source_name(spec: BenchmarkConfig) -> str:
    if spec.file is not None:
        return spec.file
    return "the embedded generator" if spec.generated else f"hub {spec.hub_id}" + (f" ({spec.subset})" if spec.subset else "")


def _hub_revision(hub_id: str) -> Optional[str]:
    """The commit the hub resolves the dataset to now, loaded at exactly that revision; None offline."""
    from huggingface_hub import HfApi

    try:
        return HfApi().dataset_info(hub_id).sha
    except Exception:  # offline, or no access: datasets then loads what it can and says why
        return None


def _records(spec: BenchmarkConfig) -> tuple[list[dict], dict[str, Any]]:
    if spec.generated:
        rows = generate_benchmark(EMBEDDED_BENCHMARK_SIZE, seed=0)
        return rows, {"generated": "embedded", "version": EMBEDDED_VERSION}
    import datasets

    if spec.file is not None:
        source = {"file": spec.file, "sha256": file_sha256(spec.file)}
        if Path(spec.file).stat().st_size < 4096 and not Path(spec.file).read_bytes().strip():
            return [], source  # datasets cannot read an empty file; rows_from says it is empty
        try:
            dataset = datasets.load_dataset(LOCAL_FORMATS[Path(spec.file).suffix], data_files=spec.file, split="train")
        except Exception as error:  # malformed JSON, CSV or Parquet: name the file, keep datasets' reason
            raise ConfigError(f"benchmark file {spec.file} cannot be read: {error}") from error
        return list(dataset), source
    revision = _hub_revision(spec.hub_id)
    try:
        dataset = datasets.load_dataset(spec.hub_id, spec.subset, split=spec.split, revision=revision)
    except Exception as error:  # a typo, a gated dataset without a login, no network: datasets' reason, one line
        raise ConfigError(f"benchmark hub_id {spec.hub_id} cannot be loaded: {first_line(error)}") from None
    return list(dataset), {"hub_id": spec.hub_id, "subset": spec.subset, "split": spec.split, "revision": revision}


def _template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _needed_fields(spec: BenchmarkConfig) -> dict[str, str]:
    """field -> the description key that names it."""
    question = _template_fields(spec.question) if "{" in spec.question else [spec.question]
    needed = {f: "question" for f in question}
    needed.update({spec.answer: "answer", **{f: "choices" for f in spec.choices}})
    return {**needed, **({spec.id: "id"} if spec.id else {})}


def gold_answer(value: Any, pattern: Optional[str]) -> Optional[str]:
    """The gold answer text from a field's value: a list (OlympiadBench's final_answer) joined, then taken out
    of a solution text by the pattern; None where the pattern finds nothing."""
    if value is None:
        return None
    text = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if pattern == "boxed":
        found = boxed(text)
        return found[-1].strip() if found else None
    if pattern is not None:
        matches = list(re.finditer(pattern, text, re.MULTILINE))
        if not matches:
            return None
        text = matches[-1].group(1) if matches[-1].re.groups else matches[-1].group(0)
    return text.strip()


def choice_row(qid: str, question: str, correct: str, wrong: list[str]) -> dict:
    """A multiple-choice row: the correct choice among the others in a seeded, per-question order."""
    options = [correct, *wrong]
    random.Random(f"{CHOICE_SEED}-{qid}").shuffle(options)
    letters = string.ascii_uppercase[: len(options)]
    listing = "\n".join(f"{letter}) {text}" for letter, text in zip(letters, options))
    return {"id": qid, "question": f"{question}\n\n{listing}\n\nAnswer with the letter of the correct choice.",
            "answer": letters[options.index(correct)], "kind": BenchmarkKind.choice.value}


def _correct_choice(options: list[str], gold: Any, answer_is_a_choice: bool) -> Optional[int]:
    """Index of the correct choice: the gold is an index, a letter, or the correct choice's own text."""
    if isinstance(gold, int) and not isinstance(gold, bool):
        return gold if 0 <= gold < len(options) else None
    text = str(gold).strip()
    if not answer_is_a_choice and len(text) == 1 and text.upper() in string.ascii_uppercase[: len(options)]:
        return string.ascii_uppercase.index(text.upper())
    return options.index(text) if text in options else None


def _row(name: str, spec: BenchmarkConfig, record: dict, index: int) -> tuple[Optional[dict], str]:
    qid = str(record[spec.id]) if spec.id else str(index)
    qid = qid if spec.generated else f"{name}-{qid}"
    question = (spec.question.format_map(record) if "{" in spec.question else str(record[spec.question])).strip()
    if spec.kind is BenchmarkKind.choice:
        held = record[spec.choices[0]] if len(spec.choices) == 1 else [record[f] for f in spec.choices]
        options = [str(option).strip() for option in held]
        correct = _correct_choice(options, record[spec.answer], spec.answer in spec.choices)
        if correct is None:
            return None, qid
        return choice_row(qid, question, options[correct], options[:correct] + options[correct + 1:]), qid
    gold = gold_answer(record[spec.answer], spec.answer_pattern)
    if gold and spec.kind is BenchmarkKind.math:
        gold = gold.strip("$").strip()
    return ({"id": qid, "question": question, "answer": gold, "kind": spec.kind.value} if gold else None), qid


def rows_from(name: str, spec: BenchmarkConfig, records: list[dict]) -> list[dict]:
    """The benchmark's rows from its source's records, or a ConfigError that names the benchmark, the source
    and the field (an empty source, a missing field, gold answers not found, repeated ids)."""
    where = f"benchmark {name} ({_source_name(spec)})"
    if not records:
        raise ConfigError(f"{where}: no rows")
    has = sorted(records[0])
    for field_name, key in _needed_fields(spec).items():
        if field_name not in records[0]:
            raise ConfigError(f"{where}: no field {field_name!r} (its {key}); the rows have: {', '.join(has)}")
    rows, unreadable = [], []
    for index, record in enumerate(records):
        row, qid = _row(name, spec, record, index)
        (rows if row else unreadable).append(row or qid)
    if unreadable:
        how = f"answer_pattern {spec.answer_pattern!r}" if spec.answer_pattern else "a correct choice" \
            if spec.kind is BenchmarkKind.choice else "a non-empty value"
        raise ConfigError(f"{where}: field {spec.answer!r} gives no gold answer by {how} in {len(unreadable)} of "
                          f"{len(records)} rows, e.g. {', '.join(unreadable[:SHOWN])}")
    repeated = [qid for qid, count in Counter(r["id"] for r in rows).items() if count > 1]
    if repeated:
        field_name = f"field {spec.id!r}" if spec.id else "the row index"
        raise ConfigError(f"{where}: {len(repeated)} ids repeat in {field_name}, e.g. {', '.join(repeated[:SHOWN])}")
    return rows


def load_benchmark(name: str, spec: BenchmarkConfig) -> Benchmark:
    records, source = _records(spec)
    return Benchmark(name, rows_from(name, spec, records), source)


_LOADED: dict[tuple[str, Optional[str], str], Benchmark] = {}


def benchmark(name: str, eval_cfg: EvalConfig) -> Benchmark:
    """The benchmark `eval.benchmarks` names, loaded once per process for each content (planning a sweep
    checks every cell's benchmarks; they are mostly the same ones). An edited file has a new fingerprint, so
    it loads again; the path is in the key too, so its rows' source names the file asked for."""
    spec = benchmark_spec(name, eval_cfg)
    key = (name, spec.file, json.dumps(fingerprint(spec), sort_keys=True))
    if key not in _LOADED:
        _LOADED[key] = load_benchmark(name, spec)
    return _LOADED[key]


def benchmark_questions(eval_cfg: EvalConfig) -> dict[str, list[str]]:
    """Every evaluated benchmark's questions, which selection decontaminates against."""
    return {name: [row["question"] for row in benchmark(name, eval_cfg).rows] for name in eval_cfg.benchmarks}
