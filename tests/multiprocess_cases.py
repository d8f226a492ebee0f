"""The runs compared between one process and two (``test_multiprocess.py``).

Every process of a ``jax.distributed`` run calls :func:`run_all` with a mesh of the
global devices; the test's own process calls it without a mesh, on its one device, for
the reference. Both save what they end with (spikes, every member's state) in one
``.npz`` file.
"""

import numpy as np

from canns_stdp import Ensemble, SpikingLayer, Trainer, rules

N_IN, N_OUT, T, K = 12, 6, 60, 8


def rule_of(kind, k):
    if kind == "triplet":
        return rules.triplet(A2_plus=0.01 * (k + 1), A3_plus=0.02, tau_x=15.0, tau_y=25.0)
    return rules.reward(rules.pair(A_plus=0.01 * (k + 1), A_minus=0.03), "rstdp", tau_c=12.0, tau_d=8.0)


def make(kind, k, compiled=True, n_out=N_OUT, **mesh):
    return Trainer(SpikingLayer(N_IN, n_out, seed=k, threshold=1.2), rule_of(kind, k),
                   learning_rate=0.3 + 0.1 * k, compiled=compiled, **mesh)


def save_sharded(target, folder):
    from canns_stdp.sharded_checkpoint import save_sharded
    save_sharded(target, folder)


def state_of(prefix, trainers):
    """Every member's weights, membrane, postsynaptic trace and rule state, by name."""
    out = {}
    for k, t in enumerate(trainers):
        for name in ("W", "v", "trace_post", "trace_pre"):
            out[f"{prefix}/{k}/{name}"] = np.asarray(getattr(t.model, name).value)
        for name in t._rule_state.names():
            out[f"{prefix}/{k}/{name}"] = np.asarray(getattr(t, name).value)
        out[f"{prefix}/{k}/steps"] = np.asarray(t.steps_trained)
    return out


def run_all(grid=None, line=None, save_to=None):
    """The runs, on ``grid`` (members x neurons) and ``line`` (neurons) when given, else on
    one device; returns the arrays to compare. With ``save_to`` (a folder), the triplet
    ensemble's and the single layer's final states are also saved there as sharded
    checkpoints (``ensemble``, ``trainer``)."""
    rng = np.random.default_rng(0)
    on_grid = {} if grid is None else dict(mesh=grid, member_axis="members", neuron_axis="neurons")
    out = {}
    # members along one axis and neurons along the other, a batch of 2 per member, inputs of their own
    for kind, compiled in (("triplet", True), ("rstdp", True), ("triplet", False)):
        xs = (rng.random((K, T, 2, N_IN)) < 0.3).astype(np.float32)
        posts = (rng.random((K, T, 2, N_OUT)) < 0.05).astype(np.float32)
        reward = [np.sin(np.arange(T) / (k + 2.0)).astype(np.float32)[:, None].repeat(2, 1) for k in range(K)]
        given = {"reward": reward} if kind == "rstdp" else {}
        members = [make(kind, k, compiled) for k in range(K)]
        ensemble = Ensemble(members, **on_grid)
        case = f"{kind}-{compiled}"
        out[f"{case}/spikes"] = ensemble.train(list(xs), list(posts), return_spikes=True, **given)
        x = (rng.random((20, 2, N_IN)) < 0.3).astype(np.float32)  # one input for all, no plasticity
        out[f"{case}/predicted"] = ensemble.predict_batch(x)
        out.update(state_of(case, members))
        if save_to is not None and case == "triplet-True":
            save_sharded(ensemble, f"{save_to}/ensemble")
    # one layer's 16 neurons split over every device, through the trainer's own mesh=, in two calls
    x = (rng.random((T, N_IN)) < 0.3).astype(np.float32)
    single = make("triplet", 0, n_out=16, **({} if line is None else dict(mesh=line, neuron_axis="neurons")))
    out["trainer/spikes"] = np.concatenate([single.train(x[:25], return_spikes=True),
                                            single.train(x[25:], return_spikes=True)])
    out["trainer/predicted"] = single.predict_batch(x[:20])
    out.update(state_of("trainer", [single]))
    if save_to is not None:
        save_sharded(single, f"{save_to}/trainer")
    return out
