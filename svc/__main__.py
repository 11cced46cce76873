"""`python -m svc`: the process boundary, and nothing else."""

from svc.cli import main

if __name__ == "__main__":
    main()
