"""Generation engines: `hf` (transformers) and `vllm`, each with all of its own forcing code."""
