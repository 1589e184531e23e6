"""python -m s1x.train JOB: one training process (rank), as torchrun, deepspeed or srun start it."""
import sys

from s1x.train.stage import main

if __name__ == "__main__":
    main(sys.argv[1])
