"""s1x's Hydra sweeper plugin: the basic sweeper, with every cell checked before any is launched."""
