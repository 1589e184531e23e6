"""python -m s1x.export CELL_DIR --gguf OUT [--type f16|q8_0]: the cell's trained model as OUT (a GGUF file) and
a Modelfile beside it, ready for `ollama create NAME -f Modelfile` or `llama-cli -m OUT`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from s1x.config import ConfigError, ModelConfig


def _model_config(cell_dir: Path) -> ModelConfig:
    """The cell's model section (its markers and system prompt), as it ran."""
    saved = cell_dir / "resolved_config.yaml"
    if not saved.is_file():
        raise FileNotFoundError(f"{cell_dir}: no resolved_config.yaml (is it a cell directory?)")
    section = OmegaConf.load(saved).model
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), section))  # type: ignore[return-value]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m s1x.export", description=__doc__)
    parser.add_argument("cell_dir", type=Path)
    parser.add_argument("--gguf", type=Path, required=True, help="the GGUF file to write; the Modelfile goes beside it")
    parser.add_argument("--type", choices=["f16", "q8_0"], default="f16")
    args = parser.parse_args(argv)

    from s1x.chat import S1Format
    from s1x.export.gguf_file import GgufType, write_gguf
    from s1x.export.modelfile import modelfile
    from s1x.models import load_tokenizer
    from s1x.outcomes import stage_dir

    try:
        checkpoint = stage_dir(args.cell_dir, "train")
        fmt = S1Format(load_tokenizer(str(checkpoint)), _model_config(args.cell_dir))
        write_gguf(checkpoint, args.gguf, GgufType(args.type))
    except (FileNotFoundError, ConfigError) as error:
        print(f"s1x.export: {error}", file=sys.stderr)
        return 2
    (args.gguf.parent / "Modelfile").write_text(modelfile(fmt, args.gguf.name))
    print(f"wrote {args.gguf} ({args.gguf.stat().st_size / 2**20:.1f} MiB, {args.type}) and {args.gguf.parent / 'Modelfile'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
