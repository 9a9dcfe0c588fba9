"""Orchestration, on top of the stages: the CLI, Hydra composition and schema, the pipeline that runs
each job's stages (`rung`, `publish` handing each checkpoint to its rung, `lock` for one runner per rung),
launchers (local, `slurm` with `resources`), status and plan printing."""
