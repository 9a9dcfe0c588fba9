"""Thread settings for this process and every process it starts, made before torch, numpy or scipy loads
(each library reads them once, at load): the `ladder` CLI and the test suite both start with them."""
import os


def quiet_threads() -> None:
    """Unless the environment says otherwise: waiting OpenMP threads sleep instead of spinning (libgomp's
    default spins ~0.3 s per wait), so on a machine shared with other jobs a run takes cores in proportion to
    its work rather than all of them (docs/train.md, "CPU threads", measures it); and numpy's and scipy's
    OpenBLAS, whose own threads spin too, works on the fit's small matrices with one thread, where a second
    only waits (torch's matmuls use their own library and threads)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
