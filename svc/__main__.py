"""`python -m svc`: the process boundary, and nothing else."""

import os
import sys

from svc.main import run

if __name__ == "__main__":
    sys.exit(run(sys.argv, os.environ.get, sys.stdout))
