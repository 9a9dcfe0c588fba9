"""The model-ladder harness, in three layers (import-linter in pyproject.toml keeps them so):

    ladder.orchestration   CLI, pipeline, Slurm, status              imports anything below
    train | eval | fit     the stages; they talk through files      import only the foundation
    ladder.core            specs, sizes, size rules, the plan,      imports no stage
                           run-directory layout, shards, atomic files

Stages never import each other: training writes checkpoints and config.yaml, eval reads them and
writes results.jsonl, the fit reads those (docs/formats.md).
"""
