"""hydra/sweeper=checked: Hydra's basic sweeper, checking the whole grid before the launcher sees it.

Hydra's sweeper composes every cell of a batch before launching it; this one also validates each
cell's typed config (s1x.validate) and the grid as a whole: a swept key that cannot change any stage's
output (`extend` under budget=none) stops the sweep with its name, locally and before anything is
submitted to SLURM. `hydra.sweeper.allow_inert_axes=true` runs such a grid anyway.
"""
# No `from __future__ import annotations`: Hydra imports plugins outside sys.modules, where a dataclass
# with string annotations cannot resolve them.
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from omegaconf import open_dict


@dataclass
class CheckedSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.s1x_sweeper.checked_sweeper.CheckedSweeper"
    allow_inert_axes: bool = False


ConfigStore.instance().store(group="hydra/sweeper", name="checked", node=CheckedSweeperConf, provider="s1x")


class CheckedSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int], params: Optional[dict] = None,
                 allow_inert_axes: bool = False) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.allow_inert_axes = allow_inert_axes

    def sweep(self, arguments: list[str]) -> Any:
        """Hydra's sweep; on Ctrl-C, the report of the cells done so far (the rest missing) and one line."""
        try:
            return super().sweep(arguments)
        except KeyboardInterrupt:
            import logging

            from s1x.report import write_report
            from s1x.report.cells import STOPPED

            path = write_report(Path(self.config.hydra.sweep.dir))
            logging.getLogger("s1x").info("report   %s\n%s", path, path.read_text())
            logging.getLogger("s1x").error(STOPPED)
            raise SystemExit(130) from None

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Compose each cell (as Hydra does: the SLURM launcher reuses these compositions), validate it, then
        the grid. A bad value stops the sweep with one line that names the cell's overrides and the key (a
        user's mistake, not s1x's: no traceback)."""
        from s1x.config import ConfigError
        from s1x.report.cells import write_planned
        from s1x.plan import say_what_is_detectable
        from s1x.validate import check_sweep, validated

        cells = []
        for overrides in batch:
            composed = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            composed = copy.copy(composed)  # the launcher takes the composition with its hydra node
            with open_dict(composed):
                del composed["hydra"]
            try:
                cells.append((list(overrides), validated(composed)))
            except ConfigError as error:
                raise SystemExit(f"s1x: cell {' '.join(overrides) or '(defaults)'}: {error}") from None
        try:
            check_sweep(cells, self.allow_inert_axes)
        except ConfigError as error:
            raise SystemExit(f"s1x: {error}") from None
        say_what_is_detectable([cfg for _, cfg in cells])
        self.planned = [*getattr(self, "planned", []), *(overrides for overrides, _ in cells)]
        if not self.config.hydra.launcher.get("dry_run", False):  # a dry run writes nothing
            write_planned(Path(self.config.hydra.sweep.dir), self.planned)
