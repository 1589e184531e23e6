"""A sweep as a graph of stage jobs: one node per unique select / train / eval key, each sized for its stage.

Cells that share a selection or a trained model share its node, so a sweep never computes a key twice;
a node already in the store is no job at all, and one another sweep has queued is waited for, not
resubmitted. Each node asks for what its stage uses: selection CPUs, training its nodes x GPUs,
evaluation the engine's tensor-parallel GPUs, and a job waits (`afterok`) only for the jobs that
make its inputs. The plan prints, per stage, how many jobs, what they wait for, their resources, and
an estimate of the GPU-hours they hold next to what one job per cell on the launcher's node would hold.

Pure functions of the cells' configs and keys (no SLURM, no store access): the launcher
(hydra_plugins/s1x_launcher) and benchmarks/sweep_planning.py build the graph with them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from s1x.config import Config, DistributedStrategy
from s1x.keys import select_determining

STAGES = ("select", "train", "eval")
REPORT = "report"
GRAPH_FILE = "graph.json"  # the submitted graph, in the sweep directory: what `python -m s1x.status` lists


@dataclass(frozen=True)
class Resources:
    """One job's allocation, in submitit's terms."""
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: int = 4
    timeout_min: int = 60

    def __str__(self) -> str:
        gpus = f" x {self.gpus_per_node} GPU" if self.gpus_per_node else ", no GPU"
        hours, minutes = divmod(self.timeout_min, 60)
        return (f"{self.nodes} node{'s' if self.nodes > 1 else ''}{gpus}, {self.cpus_per_task} CPU, "
                f"{self.mem_gb} GB, {hours}:{minutes:02d} h")

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass
class Cell:
    """A sweep cell as the plan sees it: its overrides, config and stage keys (train: None for train=none)."""
    index: int
    overrides: list[str]
    cfg: Config
    keys: dict[str, Optional[str]]


@dataclass
class Node:
    """One stage key. `cells` need it (the first one's config computes it); `needs` is its input node's id."""
    stage: str
    key: str
    cells: list[int]
    cfg: Config
    resources: Resources
    hours: float
    needs: Optional[tuple[str, str]] = None
    state: str = "submit"  # submit | stored (in the store: no job) | queued (another submission's job runs it)
    job_id: Optional[str] = None


def _launcher_value(launcher: Mapping[str, Any], stage: str, name: str) -> Any:
    """A stage section's value, else the launcher's own (the node's)."""
    value = (launcher.get(stage) or {}).get(name)
    return launcher[name] if value is None else value


def _share(total: int, part: int, whole: int) -> int:
    """`total` split in proportion `part / whole`, at least 1."""
    return max(1, total * part // whole) if whole else total


def stage_resources(stage: str, cfg: Optional[Config], launcher: Mapping[str, Any]) -> Resources:
    """What a stage's job asks for. The launcher's top-level keys describe a node (and training's shape);
    a stage section (`select:`, `eval:`, `report:`) sizes its stage within one node, never beyond it.

    - select: CPUs only, unless selection runs the model (s1k's difficulty, domain_classifier=model: its
      key then holds the model): then it is sized like an evaluation;
    - train: `nodes` x the GPUs its strategy uses (distributed=single: one process, one GPU, one node);
    - eval: one node, `eval.tensor_parallel_size` GPUs (null: the node's; a stage value `gpus_per_node` fixes
      it), with the node's CPUs and memory in proportion;
    - report: a CPU or so for minutes.
    """
    node_gpus, node_cpus, node_mem = launcher["gpus_per_node"] or 0, launcher["cpus_per_task"], launcher["mem_gb"]
    timeout = _launcher_value(launcher, stage, "timeout_min")
    if stage == "select" and cfg is not None and "model" in select_determining(cfg):
        return Resources(**{**vars(stage_resources("eval", cfg, launcher)), "timeout_min": timeout})
    if stage in ("select", REPORT):
        return Resources(1, 0, min(_launcher_value(launcher, stage, "cpus_per_task"), node_cpus),
                         min(_launcher_value(launcher, stage, "mem_gb"), node_mem), timeout)
    if stage == "train":
        assert cfg is not None
        single = cfg.distributed.strategy is DistributedStrategy.single
        gpus = min(node_gpus, 1 if single else cfg.distributed.processes_per_node or node_gpus)
        nodes = 1 if single else launcher["nodes"]
        return Resources(nodes, gpus, _share(node_cpus, gpus, node_gpus), _share(node_mem, gpus, node_gpus), timeout)
    assert stage == "eval" and cfg is not None
    fixed = (launcher.get("eval") or {}).get("gpus_per_node")
    parallel = cfg.eval.tensor_parallel_size
    gpus = fixed if fixed is not None else node_gpus if parallel is None else min(node_gpus, parallel)
    return Resources(1, gpus, _share(node_cpus, gpus, node_gpus), _share(node_mem, gpus, node_gpus), timeout)


def stage_hours(launcher: Mapping[str, Any]) -> dict[str, float]:
    """The expected duration of each stage's job: only for the plan's GPU-hours estimate."""
    return {stage: float((launcher.get(stage) or {}).get("hours") or 0.0) for stage in (*STAGES, REPORT)}


def build_graph(cells: list[Cell], launcher: Mapping[str, Any], stored: Iterable[tuple[str, str]] = (),
                queued: Optional[Mapping[tuple[str, str], str]] = None) -> dict[tuple[str, str], Node]:
    """The unique stage nodes of the cells, in submission order (selections, trainings, evaluations).

    `stored` nodes are in the store already, `queued` ones (node id -> job id) run in another submission's
    job; neither is submitted again, and a node that needs a stored input waits for nothing.
    """
    hours, stored, queued = stage_hours(launcher), set(stored), queued or {}
    nodes: dict[tuple[str, str], Node] = {}
    for stage in STAGES:
        for cell in cells:
            key = cell.keys[stage]
            if key is None:
                continue
            if (stage, key) in nodes:
                nodes[stage, key].cells.append(cell.index)
                continue
            needs = {"select": None, "train": ("select", cell.keys["select"]),
                     "eval": ("train", cell.keys["train"]) if cell.keys["train"] else None}[stage]
            node = Node(stage, key, [cell.index], cell.cfg, stage_resources(stage, cell.cfg, launcher), hours[stage], needs)
            if (stage, key) in stored:
                node.state = "stored"
            elif (stage, key) in queued:
                node.state, node.job_id = "queued", queued[stage, key]
            nodes[stage, key] = node
    return nodes


def dependencies(node: Node, nodes: Mapping[tuple[str, str], Node]) -> list[str]:
    """The job ids a node waits for (afterok): its input's job, unless the input is in the store."""
    needed = nodes.get(node.needs) if node.needs else None
    return [needed.job_id] if needed is not None and needed.state != "stored" and needed.job_id else []


def graph_gpu_hours(nodes: Iterable[Node]) -> dict[str, float]:
    """GPU-hours the graph's new jobs hold, per stage: each job's GPUs for its stage's expected hours."""
    held = {stage: 0.0 for stage in STAGES}
    for node in (n for n in nodes if n.state == "submit"):
        held[node.stage] += node.resources.gpus * node.hours
    return held


def per_cell_gpu_hours(cells: Iterable[Cell], nodes: Mapping[tuple[str, str], Node],
                       launcher: Mapping[str, Any]) -> dict[str, float]:
    """What one job per cell on the launcher's node would hold, per stage: the node's GPUs through each
    unfinished cell's evaluation, and through selection and training in the first cell that computes them
    (a later cell finds them in the store at once)."""
    hours, node_gpus = stage_hours(launcher), launcher["nodes"] * (launcher["gpus_per_node"] or 0)
    computed: set[tuple[str, str]] = set()
    held = {stage: 0.0 for stage in STAGES}
    for cell in cells:
        if nodes[("eval", cell.keys["eval"])].state == "stored":
            continue  # the per-cell launcher skipped finished cells too
        held["eval"] += node_gpus * hours["eval"]
        for stage in ("select", "train"):
            node = (stage, cell.keys[stage])
            if cell.keys[stage] and node not in computed and nodes[node].state != "stored":
                computed.add(node)
                held[stage] += node_gpus * hours[stage]
    return held


@dataclass
class StageSummary:
    jobs: int = 0
    stored: int = 0
    queued: int = 0
    waits: dict[str, int] = field(default_factory=dict)  # "train" / "nothing" -> jobs
    resources: dict[Resources, int] = field(default_factory=dict)
    gpu_hours: float = 0.0


def summarize(nodes: Mapping[tuple[str, str], Node]) -> dict[str, StageSummary]:
    summary = {stage: StageSummary() for stage in STAGES}
    for node in nodes.values():
        s = summary[node.stage]
        if node.state != "submit":
            setattr(s, node.state, getattr(s, node.state) + 1)
            continue
        s.jobs += 1
        waits = node.needs[0] if node.needs and nodes[node.needs].state != "stored" else "nothing"
        s.waits[waits] = s.waits.get(waits, 0) + 1
        s.resources[node.resources] = s.resources.get(node.resources, 0) + 1
        s.gpu_hours += node.resources.gpus * node.hours
    return summary


def render_plan(cells: list[Cell], nodes: Mapping[tuple[str, str], Node], launcher: Mapping[str, Any],
                report_job: bool = True) -> list[str]:
    """The plan as lines: per stage the jobs, what they wait for, their resources; then the GPU-hours estimate.
    `report_job`: whether a report job follows new stage jobs (not when the launcher waits and reports itself)."""
    summary, report = summarize(nodes), stage_resources(REPORT, None, launcher)
    new = sum(s.jobs for s in summary.values())
    report_job = report_job and new > 0
    lines = [f"graph: {len(cells)} cells -> {new} stage jobs + {int(report_job)} report job "
             f"({', '.join(f'{s.jobs} {stage}' for stage, s in summary.items())}); "
             f"{sum(s.stored for s in summary.values())} stages already in the store, "
             f"{sum(s.queued for s in summary.values())} queued by an earlier submission"]
    for stage, s in summary.items():
        if not (s.jobs or s.stored or s.queued):
            continue
        waits = ", ".join(f"{count} after {what} (afterok)" if what != "nothing" else f"{count} at once"
                          for what, count in s.waits.items()) or "-"
        shapes = "; ".join(f"{r}" + (f" ({count})" if len(s.resources) > 1 else "") for r, count in s.resources.items()) or "-"
        lines.append(f"  {stage:7s} {s.jobs:4d} jobs  {waits}  |  {shapes}  |  ~{s.gpu_hours:.1f} GPU-h"
                     + (f"  [+{s.stored} stored, {s.queued} queued]" if s.stored or s.queued else ""))
    if report_job:
        lines.append(f"  {REPORT:7s}    1 job   after every job (afterany)  |  {report}")
    graph, per_cell = sum(graph_gpu_hours(nodes.values()).values()), sum(per_cell_gpu_hours(cells, nodes, launcher).values())
    ratio = f"{graph / per_cell:.2f}x" if per_cell else "n/a (no GPUs)"
    lines.append(f"GPU-hours (estimate, stage hours from hydra.launcher.<stage>.hours): {graph:.1f} as a graph, "
                 f"{per_cell:.1f} as one job per cell holding {launcher['nodes']} x {launcher['gpus_per_node'] or 0} GPUs: {ratio}")
    return lines
