"""The foundation: what every stage and the orchestration share, importing none of them.

`sizes` (model shapes and parameter counts), `recipes` (size rules: each hyperparameter a function of N),
`plan` (a ladder config → rungs, jobs and targets), `schedules` (how a ladder's LR schedule makes its
rungs into jobs and runs), `configs` (reading configs/ files), `layout` (the
run directory's names), `shards` (packed token shards), `files` (atomic writes), `mmlu` (subject groups),
`interrupt` (SIGTERM as a recorded, resumable stop).
"""
