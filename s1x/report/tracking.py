"""W&B for the report: one run (job_type "report") in the group and project its cells logged to.

When a cell ran with logger=wandb (its resolved_config.yaml says so), the report is logged with the
CSV's table as a wandb.Table and the plots as images. Each rendering, `python -m s1x.report` included,
logs a new report run, as a rerun stage would; WANDB_MODE=disabled turns it off.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from s1x.config import LoggerConfig, LoggerKind
from s1x.tracking import wandb_mode


def wandb_logger(sweep_dir: Path, cells: list[dict]) -> Optional[LoggerConfig]:
    """The W&B project the cells logged to (logger=wandb in a cell's resolved_config.yaml), if any did."""
    for cell in cells:
        saved = sweep_dir / cell["dir"] / "resolved_config.yaml"
        logger = OmegaConf.load(saved).get("logger") if saved.exists() else None
        if logger is not None and logger.kind == LoggerKind.wandb.value:
            return LoggerConfig(LoggerKind.wandb, logger.project, logger.entity)
    return None


def log_report(logger: LoggerConfig, group: str, report_dir: Path, columns: list[str], rows: list[list],
               images: list[Path]) -> None:
    """The report stage's run, beside its cells' runs in their group: the table and the plots."""
    import wandb

    run = wandb.init(project=logger.project, entity=logger.entity, group=group, job_type="report",
                     name=f"{group}-report", dir=str(report_dir), mode=wandb_mode(), reinit="create_new")
    run.log({"report": wandb.Table(columns=columns, data=rows),
             **{path.stem: wandb.Image(str(path)) for path in images}})
    run.finish()
