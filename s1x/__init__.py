"""s1x: ablation experiments on test-time scaling of reasoning models."""
