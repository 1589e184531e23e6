"""What the terminal shows: s1x's stage lines and progress bars, and anyone's warnings and errors.

The libraries' INFO (vLLM's engine start-up alone is about 90 lines, one of them a 4 KB config dump) goes to
the cell's log file only, Hydra's job log (`__main__.log` in the run directory), from vLLM's engine processes
too. A Hydra callback (conf/config.yaml), so each job of a sweep routes to its own log. `log_level=INFO` (or
DEBUG) shows the libraries' records from that level on the terminal as well; so does `hydra.verbose`, in
Hydra's meaning: true is every logger at DEBUG, a name or a list of names those loggers.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

ALWAYS_SHOWN = ("s1x", "hydra")  # loggers whose INFO the terminal shows at any log_level
VLLM_CONFIG_PATH = "VLLM_LOGGING_CONFIG_PATH"
# Hydra's line format, with the process: vLLM's engine core and workers write to the same log.
VLLM_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - (%(processName)s) %(message)s"


class LibraryLogsToFile(Callback):
    """Routes each job's logs once Hydra has set up its handlers (the console and the job's log file)."""

    vllm_config: Optional[Path] = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.vllm_config = route_library_logs(config.log_level, config.hydra.verbose)

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ.pop(VLLM_CONFIG_PATH, None)
        if self.vllm_config is not None:
            self.vllm_config.unlink(missing_ok=True)


class _Terminal(logging.Filter):
    """What the console handler lets through: records from `level` on, and every record of the `shown` loggers."""

    def __init__(self, level: int, shown: Sequence[str]) -> None:
        super().__init__()
        self.level, self.shown = level, tuple(shown)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or any(record.name == n or record.name.startswith(n + ".") for n in self.shown)


def _level(name: str) -> int:
    """A logging level by name; a callback's exceptions only become warnings, so a wrong one stops the run here."""
    levels = logging.getLevelNamesMapping()
    if str(name).upper() not in levels:
        raise SystemExit(f"log_level={name}: not a logging level (DEBUG, INFO, WARNING, ERROR)")
    return levels[str(name).upper()]


def route_library_logs(log_level: str, verbose: Union[bool, str, Sequence[str]]) -> Path:
    """Filter the root's console handler to what the terminal shows, hand transformers' and vLLM's records to the
    log file, and return the vLLM logging config written for this job."""
    named = [] if isinstance(verbose, bool) else [verbose] if isinstance(verbose, str) else list(verbose)
    level = logging.DEBUG if verbose is True else _level(log_level)
    root = logging.getLogger()
    root.setLevel(min(root.level, level))  # log_level=DEBUG: the libraries' DEBUG records are made at all
    for handler in root.handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.addFilter(_Terminal(level, ALWAYS_SHOWN + tuple(named)))
    logging.captureWarnings(True)  # warnings as records: on the terminal and in the log file
    _transformers_to_root(min(level, logging.INFO))
    log_files = [h.baseFilename for h in root.handlers if isinstance(h, logging.FileHandler)]
    return _vllm_config(log_files[0] if log_files else None, logging.DEBUG if "vllm" in named else level)


def _transformers_to_root(level: int) -> None:
    """transformers logs through a stderr handler of its own, from WARNING: its records go to the root's handlers
    instead (log file, filtered console), from INFO or the lower level its environment asks for."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_default_handler()
    transformers_logging.enable_propagation()
    transformers_logging.set_verbosity(min(transformers_logging.get_verbosity(), level))


def _vllm_config(log_file: Optional[str], terminal_level: int) -> Path:
    """vLLM replaces its logger's handlers with its own stdout handler when an engine starts, in this process and
    in each engine process it spawns, unless VLLM_LOGGING_CONFIG_PATH names a dictConfig to apply instead: this
    one writes vLLM's records to the log file and, from `terminal_level` on, to the terminal."""
    handlers: dict[str, dict] = {"terminal": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                                              "formatter": "s1x", "level": terminal_level}}
    if log_file is not None:
        handlers["file"] = {"class": "logging.FileHandler", "filename": log_file, "formatter": "s1x"}
    config = {"version": 1, "disable_existing_loggers": False, "formatters": {"s1x": {"format": VLLM_FORMAT}},
              "handlers": handlers,
              "loggers": {"vllm": {"handlers": list(handlers), "level": min(terminal_level, logging.INFO),
                                   "propagate": False}}}
    # Beside the job's log where there is one, so a killed job leaves it there rather than in /tmp.
    descriptor, path = tempfile.mkstemp(prefix=".vllm-logging-", suffix=".json",
                                        dir=Path(log_file).parent if log_file is not None else None)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(config, handle)
    os.environ.update({"VLLM_CONFIGURE_LOGGING": "1", VLLM_CONFIG_PATH: path})
    return Path(path)
