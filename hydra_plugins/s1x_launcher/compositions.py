"""Hydra's config loader, keeping each composed cell config until the launcher takes it, and composing
cells that differ from an earlier one only in plain values by applying those values to its copy.

Composition is most of a large sweep's planning time (~75 ms of CPU a cell, far more on a loaded
machine). Hydra's sweeper composes every cell to validate the batch before launching it; the plan
takes those compositions instead of repeating them. A grid such as data x extend x budget.tokens has
few distinct group choices: a cell whose overrides change only values (`budget.tokens=64`, not a
group, not `+`/`~`, not `hydra.*`) over the same keys as a cell composed before is that cell's copy
with Hydra's own override step applied again, and the overrides, choices and override_dirname Hydra
records set as a full composition sets them (tests/test_job_graph.py compares the two).
"""
from __future__ import annotations

import copy
import time
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf


class KeptCompositions:
    """Pickled into jobs without what it keeps."""

    def __init__(self, loader: Any) -> None:
        self.loader, self.kept, self.seconds = loader, {}, 0.0
        self.bases: dict[tuple, tuple[DictConfig, frozenset]] = {}  # group overrides -> (a composition, its value keys)
        self.derived = 0

    def __getattr__(self, name: str) -> Any:
        if name == "loader":  # not set yet while unpickling
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __getstate__(self) -> dict:
        return {"loader": self.loader, "kept": {}, "seconds": 0.0, "bases": {}, "derived": 0}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        start = time.perf_counter()
        split = self._split(sweep_overrides)
        base = self.bases.get(split[0]) if split else None
        if split and base is not None and base[1] == frozenset(o.key_or_group for o in split[1]):
            config = self._derive(base[0], master_config, sweep_overrides, split[1])
            self.derived += 1
        else:
            config = self.loader.load_sweep_config(master_config, sweep_overrides)
            if split and split[1]:  # a copy: the launcher takes (and trims) the cell's own
                self.bases[split[0]] = (copy.deepcopy(config), frozenset(o.key_or_group for o in split[1]))
        self.seconds += time.perf_counter() - start
        self.kept[tuple(sweep_overrides)] = config
        return config

    def take(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """The config composed for these overrides (by the sweeper's validation, else now), handed out once."""
        key = tuple(sweep_overrides)
        if key not in self.kept:
            self.load_sweep_config(master_config, sweep_overrides)
        return self.kept.pop(key)

    def _split(self, sweep_overrides: list[str]) -> Optional[tuple[tuple, list]]:
        """(the overrides that shape the defaults list, the plain value overrides), or None to compose in full."""
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.core.override_parser.types import OverrideType

        try:
            parsed = OverridesParser.create().parse_overrides(sweep_overrides)
        except Exception:
            return None  # let the full composition raise its own error
        shaping, values = [], []
        for override in parsed:
            plain = (override.type is OverrideType.CHANGE and override.package is None and not override.is_hydra_override()
                     and not self.loader.repository.group_exists(override.key_or_group.replace(".", "/")))
            (values if plain else shaping).append(override)
        return tuple(o.input_line for o in shaping), values

    def _derive(self, base: DictConfig, master_config: DictConfig, sweep_overrides: list[str], values: list) -> DictConfig:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
        from hydra.core.override_parser.overrides_parser import OverridesParser

        config = copy.deepcopy(base)
        ConfigLoaderImpl._apply_overrides_to_config(values, config)  # what composition does after the defaults list
        parsed = OverridesParser.create().parse_overrides(sweep_overrides)
        app = [o for o in parsed if not o.is_hydra_override()]
        hydra = config.hydra
        hydra.overrides.task = [o.input_line for o in app]
        dirname = hydra.job.config.override_dirname
        hydra.job.override_dirname = get_overrides_dirname(overrides=app, kv_sep=dirname.kv_sep,
                                                           item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys)
        OmegaConf.copy_cache(from_config=master_config, to_config=config)
        return config
