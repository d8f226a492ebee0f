"""What both Brian2 scripts do first: read ``SECONDS [TARGET] [SEED]`` from the command line,
seed Brian2, choose its code generation target and set dt = 0.1 ms."""

import sys

from brian2 import defaultclock, ms, prefs, seed, set_device


def from_command_line():
    """``(duration in seconds, target)``, Brian2 set up accordingly."""
    duration = float(sys.argv[1])
    target = sys.argv[2] if len(sys.argv) > 2 else "cython"
    seed(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    if target == "cpp_standalone":
        set_device("cpp_standalone", directory=None)
    else:
        prefs.codegen.target = target
    defaultclock.dt = 0.1 * ms
    return duration, target
