"""Two processes (``jax.distributed`` on localhost, 4 CPU devices each) compute what one
process computes on one device.

Each process runs :func:`multiprocess_cases.run_all` on a mesh of the 8 global devices
(members split across the processes, neurons within each; a single layer's neurons
across all 8) and saves what its trainers hold afterwards; this test's own process runs
the same on its one device, without a mesh, and compares.
"""

import json
import os
import socket
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import background
import multiprocess_cases

SCRIPT = textwrap.dedent(r'''
    import faulthandler, json, sys
    import numpy as np
    import jax
    from jax.sharding import Mesh

    process, port, out, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    faulthandler.dump_traceback_later(limit)  # where every thread waits, if it hangs
    try:
        jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2, process_id=process,
                                   initialization_timeout=60)
        from jax.experimental import multihost_utils
        seen = multihost_utils.process_allgather(np.array([process]))  # one collective between the processes
    except Exception as err:  # the platform's own collectives, before any of the library's code
        print("UNSUPPORTED " + json.dumps(f"{type(err).__name__}: {err}"[:500]), flush=True)
        sys.exit(0)
    import multiprocess_cases

    devices = np.array(jax.devices())
    grid = Mesh(devices.reshape(4, 2), ("members", "neurons"))   # members across the processes
    line = Mesh(devices, ("neurons",))                            # one layer's neurons across both
    try:
        import orbax.checkpoint  # noqa: F401 - the sharded checkpoints are saved only where it is installed
        saved = out
    except ImportError:
        saved = None
    results = multiprocess_cases.run_all(grid, line, save_to=saved)
    np.savez(f"{out}/process{process}.npz", **results)
    print("REPORT " + json.dumps({"processes": jax.process_count(), "devices": len(jax.devices()),
                                  "local": len(jax.local_devices()), "seen": seen.ravel().tolist(),
                                  "grid_processes": sorted({d.process_index for d in grid.devices.flat}),
                                  "saved": saved is not None}),
          flush=True)
    jax.distributed.shutdown()
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


# Alone the two processes end in 15-30 s. Should they hang (as they did in about one
# full test run in three before the loops waited for each program on a mesh of several
# processes, see ``loops.spans_processes``), past LIMIT seconds each prints where its
# threads wait, 30 s later both are killed and started once more, and the test warns.
LIMIT = 150


def start(tmp_path_factory):
    """The two processes, queued behind the other checks in fresh interpreters (see
    ``background.py``), not beside the other tests. Their fixture waits for them before
    this process computes its reference."""
    if background.scheduled("multiprocess"):
        return background.scheduled("multiprocess")
    tests = str(Path(__file__).parent)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([tests] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    out = tmp_path_factory.mktemp("processes")

    def commands():  # the port is chosen when they start
        port = str(_free_port())
        return [dict(args=[sys.executable, "-c", SCRIPT, str(i), port, str(out), str(LIMIT)], env=env)
                for i in range(2)]
    return background.schedule("multiprocess", commands, timeout=LIMIT + 30, folder=out, retries=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    job = start(tmp_path_factory)
    outputs = job.outcome()
    for hung in job.retried:
        warnings.warn(f"the two processes hung and were started again; the first time: {hung[-3000:]}")
    reference = multiprocess_cases.run_all()  # (after them: nothing of this process beside them)
    out = job.folder
    for returncode, stdout, stderr in outputs:
        if "UNSUPPORTED " in stdout:
            pytest.skip("this platform runs no collectives between two JAX processes on localhost: "
                        + stdout.split("UNSUPPORTED ", 1)[1].strip())
        assert returncode == 0, stderr[-4000:]
    reports = [json.loads(stdout.split("REPORT ", 1)[1]) for _, stdout, _ in outputs]
    processes = [dict(np.load(out / f"process{i}.npz")) for i in range(2)]
    return reports, processes, reference, out


def test_two_processes_of_four_devices_each_make_one_mesh_of_eight(runs):
    reports, _, _, _ = runs
    for report in reports:
        assert report == {"processes": 2, "devices": 8, "local": 4, "seen": [0, 1], "grid_processes": [0, 1],
                          "saved": report["saved"]}


@pytest.mark.parametrize("process", [0, 1])
def test_every_process_ends_where_one_process_on_one_device_ends(runs, process):
    _, processes, reference, _ = runs
    got = processes[process]
    assert sorted(got) == sorted(reference)
    for name, want in reference.items():
        if name.endswith(("spikes", "predicted", "steps")):
            np.testing.assert_array_equal(got[name], want, err_msg=name)
        else:
            np.testing.assert_allclose(got[name], want, rtol=0, atol=1e-6, err_msg=name)
    for case in ("triplet-True", "rstdp-True", "triplet-False", "trainer"):
        assert 0.02 < reference[f"{case}/spikes"].mean() < 0.9  # the spikes compared are not all 0 or all 1
    assert reference["trainer/0/steps"] == multiprocess_cases.T
    assert reference["triplet-True/spikes"].shape == (multiprocess_cases.K, multiprocess_cases.T, 2,
                                                      multiprocess_cases.N_OUT)


def test_both_processes_hold_the_same_state(runs):
    _, processes, _, _ = runs
    for name in processes[0]:
        np.testing.assert_array_equal(processes[0][name], processes[1][name], err_msg=name)



def test_sharded_checkpoints_written_by_two_processes_load_on_one_device(runs):
    reports, processes, _, out = runs
    if not reports[0]["saved"]:
        pytest.skip('orbax-checkpoint is not installed (pip install "canns_stdp[orbax]")')
    from canns_stdp import Ensemble
    from canns_stdp.sharded_checkpoint import restore_sharded

    members = [multiprocess_cases.make("triplet", k) for k in range(multiprocess_cases.K)]
    restore_sharded(Ensemble(members), out / "ensemble")   # written by both processes, members split across them
    single = multiprocess_cases.make("triplet", 0, n_out=16)
    restore_sharded(single, out / "trainer")               # its rows split across both processes
    restored = {**multiprocess_cases.state_of("triplet-True", members),
                **multiprocess_cases.state_of("trainer", [single])}
    assert len(restored) == 8 * 7 + 7
    for name, a in restored.items():
        np.testing.assert_array_equal(a, processes[0][name], err_msg=name)  # what the processes held, bit for bit
    assert restored["trainer/0/steps"] == multiprocess_cases.T
