"""Train: supervised fine-tuning (full or LoRA; one process, DeepSpeed ZeRO or FSDP; multi-node under SLURM).

Takes the model config, the train and distributed configs and a selection's rows; writes a checkpoint.
"""
__all__ = ["train"]


def __getattr__(name: str):
    # The stage imports torch and transformers (seconds); planning a sweep imports this package without them.
    if name == "train":
        from s1x.train.stage import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
