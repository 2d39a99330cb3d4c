"""Scaling-law fits on tables of runs: pure functions in, JSON-ready dicts out.

Every fit reads plain CSV rows (``results/summary.csv``, a run's ``curve.csv`` or any external
table), so the same code fits this pipeline's runs and published ones.

The fits run thousands of small L-BFGS-B problems; scipy's L-BFGS-B calls BLAS on 5-vectors, and
multi-threaded OpenBLAS spinning on a busy machine made one fit ~35x slower (0.7 s vs 0.02 s,
measured on a shared 2-core box). So single-threaded BLAS is the default here, unless the caller
set the variables, or numpy was imported before this package (then the caller's setting stands).
"""

import os

# No single reference architecture: each objective family has its own (analysis/family.py), since
# span-corruption, causal and masked-LM losses are losses of different tasks.

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
