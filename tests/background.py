"""Checks that run in fresh interpreters, started when the test run begins.

A fresh interpreter pays for importing JAX and compiling its programs, mostly on one core;
while the tests of the other files run in this process, a thread here runs these jobs one
after another, beside them. A test module that has such jobs defines
``start_in_background(tmp_path_factory)``, which calls :func:`schedule`; ``conftest.py``
calls it for every selected module once the tests are collected, and the module's fixture
calls it again (it returns the job already scheduled) and waits for :meth:`Job.outcome`.
"""

import json
import os
import subprocess
import sys
import threading
import time

_lock = threading.Lock()
_jobs = {}        # name -> Job, in the order scheduled
_pending = []     # jobs not started yet
_wake = threading.Condition(_lock)
_worker = None
_stopped = False


class Job:
    """Commands started together (``Popen`` arguments each, or a function that returns
    them when the job starts), waited for together. With ``retries``, commands still
    running at ``timeout`` are killed and started again (``retried`` keeps what each
    earlier attempt printed)."""

    def __init__(self, name, commands, timeout, folder=None, retries=0):
        self.name, self.commands, self.timeout, self.folder, self.retries = name, commands, timeout, folder, retries
        self.results = None   # [(returncode, stdout, stderr)] in the order of the commands
        self.error = None     # why the commands did not finish
        self.hung = False     # whether the last attempt ran past its timeout
        self.retried = []     # the error of each attempt that ran past its timeout, then retried
        self.started = self.finished = None
        self._done = threading.Event()
        self._procs = []

    def _run(self):
        try:
            for attempt in range(self.retries + 1):
                self.error, self.hung = None, False
                self._attempt()
                if not self.hung or _stopped:
                    break
                if attempt < self.retries:
                    self.retried.append(self.error)
        finally:
            self.finished = time.perf_counter()
            self._done.set()

    def _attempt(self):
        self.started = time.perf_counter()
        try:
            commands = self.commands() if callable(self.commands) else self.commands
            self._procs = [subprocess.Popen(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **command)
                           for command in commands]
            # one reader per process: a pipe left unread could block the others
            outputs = [None] * len(self._procs)

            def read(k):
                outputs[k] = self._procs[k].communicate()
            readers = [threading.Thread(target=read, args=(k,), daemon=True) for k in range(len(self._procs))]
            for r in readers:
                r.start()
            deadline = self.started + self.timeout
            for r in readers:
                r.join(max(0.0, deadline - time.perf_counter()))
            if any(r.is_alive() for r in readers):
                self.kill()  # (their output ends, and tells how far they got)
                for r in readers:
                    r.join(10.0)
                said = "".join(f"\n--- command {k}: stdout\n{o[0][-2000:]}\n--- stderr\n{o[1][-2000:]}"
                               for k, o in enumerate(outputs) if o is not None)
                self.error = f"{self.name}: still running after {self.timeout} s{said}"
                self.hung = True
            else:
                self.results = [(p.returncode, *out) for p, out in zip(self._procs, outputs)]
        except Exception as err:  # noqa: BLE001 - reported by the test that waits for the job
            self.error = f"{self.name}: {type(err).__name__}: {err}"
        finally:
            self.kill()

    def kill(self):
        for p in self._procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def outcome(self):
        """[(returncode, stdout, stderr)] of each command, once they have all ended."""
        self._done.wait()
        if self.error is not None:
            raise AssertionError(self.error)
        return self.results


def _work():
    while True:
        with _lock:
            while not _pending and not _stopped:
                _wake.wait()
            if _stopped:
                return
            job = _pending.pop(0)
        job._run()


def scheduled(name):
    """The job called ``name``, or None if none is."""
    with _lock:
        return _jobs.get(name)


def schedule(name, commands, timeout, folder=None, retries=0):
    """The job called ``name``, queued to run after those scheduled before it (or the one
    already scheduled under that name); ``retries``: see :class:`Job`."""
    global _worker
    with _lock:
        if name in _jobs:
            return _jobs[name]
        job = _jobs[name] = Job(name, commands, timeout, folder, retries)
        if _stopped:
            job.error = f"{name}: the test run is over"
            job._done.set()
            return job
        _pending.append(job)
        if _worker is None:
            _worker = threading.Thread(target=_work, name="background-checks", daemon=True)
            _worker.start()
        _wake.notify()
    return job


# what every check run by on_eight_devices may call
CHECK_HELPERS = """
def refused(build):
    \"\"\"The message of the error ``build()`` raises (ValueError or TypeError), or None.\"\"\"
    try:
        build()
    except (ValueError, TypeError) as err:
        return str(err)
    return None
"""


def on_eight_devices(name, code, *args):
    """The job called ``name``: Python ``code`` (after :data:`CHECK_HELPERS`) with ``args``
    in an interpreter that sees 8 host devices (``args`` may be a function that returns
    them when the job starts)."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")

    def command():
        given = args[0]() if len(args) == 1 and callable(args[0]) else args
        return [dict(args=[sys.executable, "-c", CHECK_HELPERS + code, *map(str, given)], env=env)]
    return schedule(name, command, timeout=600)


def report(job):
    """The JSON a check printed on its line starting ``REPORT `` (its error output if it failed)."""
    [(returncode, stdout, stderr)] = job.outcome()
    assert returncode == 0, stderr[-4000:]
    line = next(row for row in stdout.splitlines() if row.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])


def stop():
    """Ends the jobs still running and drops those not started."""
    global _stopped
    with _lock:
        _stopped = True
        dropped, _pending[:] = list(_pending), []
        _wake.notify()
    for job in dropped:
        job.error = f"{job.name}: the test run is over"
        job._done.set()
    for job in list(_jobs.values()):
        job.kill()
