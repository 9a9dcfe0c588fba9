"""Orchestration, on top of the stages: the CLI, Hydra composition and schema, the pipeline that runs
each rung's stages (`rung`, `trunks` for WSD-S and branch ladders, `lock` for one runner per rung),
launchers (local, `slurm` with `resources`), status and plan printing."""
