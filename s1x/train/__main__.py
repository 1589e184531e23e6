"""python -m s1x.train JOB: one training process (rank), as torchrun, deepspeed or srun start it."""
import logging
import os
import sys

from s1x.train.stage import main

if __name__ == "__main__":
    main(sys.argv[1])
    # Everything is written. Interpreter teardown can still abort a rank in the C++ destructors of the
    # process group's threads ("terminate called without an active exception", seen under load even after
    # destroy_process_group), and srun --kill-on-bad-exit then fails the whole step: exit without it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
