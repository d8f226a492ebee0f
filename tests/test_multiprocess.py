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
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import multiprocess_cases

SCRIPT = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    import jax
    from jax.sharding import Mesh

    process, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
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
    results = multiprocess_cases.run_all(grid, line)
    np.savez(f"{out}/process{process}.npz", **results)
    print("REPORT " + json.dumps({"processes": jax.process_count(), "devices": len(jax.devices()),
                                  "local": len(jax.local_devices()), "seen": seen.ravel().tolist(),
                                  "grid_processes": sorted({d.process_index for d in grid.devices.flat})}),
          flush=True)
    jax.distributed.shutdown()
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("processes")
    tests = str(Path(__file__).parent)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([tests] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(i), port, str(out)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=240))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (stdout, stderr) in zip(procs, outputs):
        if "UNSUPPORTED " in stdout:
            pytest.skip("this platform runs no collectives between two JAX processes on localhost: "
                        + stdout.split("UNSUPPORTED ", 1)[1].strip())
        assert p.returncode == 0, stderr[-4000:]
    reports = [json.loads(stdout.split("REPORT ", 1)[1]) for stdout, _ in outputs]
    processes = [dict(np.load(out / f"process{i}.npz")) for i in range(2)]
    return reports, processes, multiprocess_cases.run_all()


def test_two_processes_of_four_devices_each_make_one_mesh_of_eight(runs):
    reports, _, _ = runs
    for report in reports:
        assert report == {"processes": 2, "devices": 8, "local": 4, "seen": [0, 1], "grid_processes": [0, 1]}


@pytest.mark.parametrize("process", [0, 1])
def test_every_process_ends_where_one_process_on_one_device_ends(runs, process):
    _, processes, reference = runs
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
    _, processes, _ = runs
    for name in processes[0]:
        np.testing.assert_array_equal(processes[0][name], processes[1][name], err_msg=name)

