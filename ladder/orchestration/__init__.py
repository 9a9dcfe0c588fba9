"""Orchestration, on top of the stages: the CLI, Hydra composition and schema, the pipeline that runs
each rung's stages (`rung`), launchers (local, `slurm` with `resources`), status and plan printing."""
