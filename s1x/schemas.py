"""The structured configs Hydra composes: the top-level schema (s1x/config.py) and each budget mode's settings."""
from hydra.core.config_store import ConfigStore

from s1x.config import Config
from s1x.evaluate.modes import register_schemas


def register() -> None:
    ConfigStore.instance().store(name="s1x_schema", node=Config)
    register_schemas()
