"""Sharded checkpoints (orbax): saved on 8 devices, restored on 2 and on 1, the run goes on
as if never interrupted; a folder that is damaged or does not fit is refused, no member
changed."""

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import background
import multiprocess_cases as cases
from canns_stdp import Ensemble
from canns_stdp.checkpoint import CheckpointError

pytest.importorskip("orbax.checkpoint",
                    reason='sharded checkpoints need orbax-checkpoint: pip install "canns_stdp[orbax]"')
from canns_stdp.sharded_checkpoint import restore_sharded, save_sharded  # noqa: E402

T1, T2 = 30, 30  # steps before the checkpoint, steps after


def inputs():
    rng = np.random.default_rng(7)
    xs = (rng.random((cases.K, T1 + T2, 2, cases.N_IN)) < 0.3).astype(np.float32)  # a batch of 2 per member
    x = (rng.random((T1 + T2, cases.N_IN)) < 0.3).astype(np.float32)
    return xs, x


SCRIPT = textwrap.dedent(r'''
    import sys
    import numpy as np
    import jax
    from jax.sharding import Mesh
    from canns_stdp import Ensemble
    from canns_stdp.sharded_checkpoint import restore_sharded, save_sharded
    import multiprocess_cases as cases
    from test_sharded_checkpoint import T1, inputs

    mode, folder = sys.argv[1], sys.argv[2]
    devices = np.array(jax.devices())
    grid = Mesh(devices.reshape(-1, 2), ("members", "neurons"))
    line = Mesh(devices, ("neurons",))
    xs, x = inputs()
    members = [cases.make("triplet", k) for k in range(cases.K)]
    ensemble = Ensemble(members, mesh=grid, member_axis="members", neuron_axis="neurons")
    single = cases.make("triplet", 0, n_out=16, mesh=line, neuron_axis="neurons")
    if mode == "save":
        ensemble.train(list(xs[:, :T1]))
        single.train(x[:T1])
        save_sharded(ensemble, f"{folder}/ensemble")
        save_sharded(single, f"{folder}/trainer")
    else:
        restore_sharded(ensemble, f"{folder}/ensemble")
        restore_sharded(single, f"{folder}/trainer")
        out = {"ensemble/spikes": ensemble.train(list(xs[:, T1:]), return_spikes=True),
               "trainer/spikes": single.train(x[T1:], return_spikes=True)}
        out.update(cases.state_of("ensemble", members))
        out.update(cases.state_of("trainer", [single]))
        np.savez(f"{folder}/resumed-on-{len(devices)}.npz", **out)
    print("DONE", len(devices))
''')


def command(devices: int, mode: str, folder: Path) -> dict:
    tests = str(Path(__file__).parent)
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([tests] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return dict(args=[sys.executable, "-c", SCRIPT, mode, str(folder)], env=env)


def ran(job, devices: int) -> None:
    [(returncode, stdout, stderr)] = job.outcome()
    assert returncode == 0 and f"DONE {devices}" in stdout, stderr[-4000:]


WITHOUT_ORBAX = textwrap.dedent('''
    import sys
    sys.modules["orbax"] = sys.modules["orbax.checkpoint"] = None   # as if not installed
    import canns_stdp, canns_stdp.sharded_checkpoint
    from canns_stdp import SpikingLayer, STDPTrainer
    try:
        canns_stdp.sharded_checkpoint.save_sharded(STDPTrainer(SpikingLayer(4, 2)), "unused")
    except ImportError as err:
        print("MESSAGE", err)
''')


def start_in_background(tmp_path_factory):
    """Saved on 8 devices, then resumed on 2, and the library without orbax: fresh
    interpreters, started beside the other tests (see ``background.py``)."""
    if background.scheduled("sharded-save-8"):
        return [background.scheduled(name) for name in ("sharded-save-8", "sharded-resume-2", "without-orbax")]
    folder = tmp_path_factory.mktemp("sharded")
    return [background.schedule("sharded-save-8", [command(8, "save", folder)], timeout=300, folder=folder),
            background.schedule("sharded-resume-2", [command(2, "resume", folder)], timeout=300, folder=folder),
            background.schedule("without-orbax", [dict(args=[sys.executable, "-c", WITHOUT_ORBAX],
                                                       env=dict(os.environ, JAX_PLATFORMS="cpu"))], timeout=120)]


def fresh():
    return [cases.make("triplet", k) for k in range(cases.K)], cases.make("triplet", 0, n_out=16)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    save, _, _ = start_in_background(tmp_path_factory)
    ran(save, 8)
    return save.folder


def uninterrupted():
    xs, x = inputs()
    members, single = fresh()
    out = {"ensemble/spikes": Ensemble(members).train(list(xs), return_spikes=True)[:, T1:],
           "trainer/spikes": single.train(x, return_spikes=True)[T1:]}
    out.update(cases.state_of("ensemble", members))
    out.update(cases.state_of("trainer", [single]))
    return out


def resumed_here(folder):
    """Restored on this process's one device, without a mesh, and trained on."""
    xs, x = inputs()
    members, single = fresh()
    restore_sharded(Ensemble(members), folder / "ensemble")
    restore_sharded(single, folder / "trainer")
    assert [t.steps_trained for t in members] == [T1] * cases.K and single.steps_trained == T1
    assert np.shape(members[0].model.v.value) == (2, cases.N_OUT)  # the batched state came back batched
    out = {"ensemble/spikes": Ensemble(members).train(list(xs[:, T1:]), return_spikes=True),
           "trainer/spikes": single.train(x[T1:], return_spikes=True)}
    out.update(cases.state_of("ensemble", members))
    out.update(cases.state_of("trainer", [single]))
    return out


def test_saved_on_8_devices_resumed_on_2_and_on_1_as_never_interrupted(saved, tmp_path_factory):
    reference = uninterrupted()
    on_one = resumed_here(saved)
    _, resume, _ = start_in_background(tmp_path_factory)  # run after the save, while this process went on
    ran(resume, 2)
    on_two = dict(np.load(saved / "resumed-on-2.npz"))
    for resumed in (on_two, on_one):
        assert sorted(resumed) == sorted(reference)
        for name, want in reference.items():
            if name.endswith(("spikes", "steps")):
                np.testing.assert_array_equal(resumed[name], want, err_msg=name)
            else:
                np.testing.assert_allclose(resumed[name], want, rtol=0, atol=1e-6, err_msg=name)
    assert 0.02 < reference["ensemble/spikes"].mean() < 0.9 and 0.02 < reference["trainer/spikes"].mean() < 0.9
    assert reference["trainer/0/steps"] == T1 + T2


def held(trainers):
    return cases.state_of("held", trainers)


def refused(folder, trainers, target=None):
    """The error of restoring ``folder`` into ``target`` (default: an ensemble of
    ``trainers``), after checking the trainers were left as they were."""
    before = held(trainers)
    with pytest.raises(CheckpointError) as err:
        restore_sharded(Ensemble(trainers) if target is None else target, folder)
    after = held(trainers)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    return str(err.value)


def test_a_checkpoint_that_does_not_fit_is_refused_naming_what(saved):
    folder = saved / "ensemble"
    few = [cases.make("triplet", k) for k in range(4)]
    assert refused(folder, few) == f"sharded checkpoint '{folder}' holds 8 members, the ensemble has 4"
    narrow = [cases.make("triplet", k, n_out=4) for k in range(cases.K)]
    assert refused(folder, narrow) == (f"sharded checkpoint '{folder}': member 0's model has output_size=6, the "
                                       "ensemble's has output_size=4")
    members = [cases.make("triplet", k) for k in range(cases.K)]
    members[3].learning_rate = 0.25
    assert refused(folder, members) == (f"sharded checkpoint '{folder}': member 3's trainer has "
                                        "learning_rate=0.6000000000000001, the ensemble's has learning_rate=0.25")
    pair = [cases.make("rstdp", k) for k in range(cases.K)]
    assert refused(folder, pair).startswith(f"sharded checkpoint '{folder}': member 0's trainer has rule=")
    single = cases.make("triplet", 0, n_out=16)
    assert refused(folder, [single], target=single) == (f"sharded checkpoint '{folder}' holds 8 members, the "
                                                        "ensemble has 1")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # orbax's tasks left failing at exit
def test_a_damaged_checkpoint_is_refused_and_changes_nothing(saved, tmp_path):
    # a byte of each of the arrays' data files flipped: the storage's own checksums catch it
    damaged = tmp_path / "damaged"
    shutil.copytree(saved / "ensemble", damaged)
    data = [p for p in (damaged / "arrays").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert data
    for path in data:
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0x10
        path.write_bytes(bytes(raw))
    message = refused(damaged, [cases.make("triplet", k) for k in range(cases.K)])
    assert message.startswith(f"sharded checkpoint '{damaged}' is corrupted or incomplete: its arrays could not be "
                              "read") and message.endswith("no member was changed")
    # values that differ from what was saved (here, the saved checksum of one member's weights)
    forged = tmp_path / "forged"
    shutil.copytree(saved / "ensemble", forged)
    meta = forged / "description" / "metadata"
    description = json.loads(meta.read_text())
    description["arrays"]["model/W"]["checksums"][5][1] ^= 1
    meta.write_text(json.dumps(description))
    assert refused(forged, [cases.make("triplet", k) for k in range(cases.K)]) == (
        f"sharded checkpoint '{forged}' is corrupted: array 'model/W' of member 5 fails its checksum; no member "
        "was changed")
    # not a checkpoint at all
    empty = tmp_path / "empty"
    empty.mkdir()
    assert refused(empty, [cases.make("triplet", k) for k in range(cases.K)]).startswith(
        f"'{empty}' is not a readable sharded checkpoint")


def test_a_folder_is_written_once(saved):
    members, _ = fresh()
    with pytest.raises(FileExistsError, match="it exists"):
        save_sharded(Ensemble(members), saved / "ensemble")


def test_without_orbax_the_library_imports_and_says_what_to_install(tmp_path_factory):
    _, _, without = start_in_background(tmp_path_factory)
    [(returncode, stdout, stderr)] = without.outcome()
    assert returncode == 0, stderr[-2000:]
    assert stdout.strip() == ('MESSAGE sharded checkpoints need orbax-checkpoint, which is not installed: '
                              'pip install "canns_stdp[orbax]" (or pip install orbax-checkpoint)')
