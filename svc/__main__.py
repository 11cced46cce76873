"""`python -m svc`: the process boundary, and nothing else."""

import os
import sys

from svc.main import run, tune_gc

if __name__ == "__main__":
    tune_gc()
    sys.exit(run(sys.argv, os.environ.get, sys.stdout))
