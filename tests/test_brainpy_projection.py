"""PlasticProjection, the library's rules inside BrainPy networks: against BrainPy's own
``bp.dyn.STDP_Song2000`` on its docstring's network, against the library's network engine
on the same network, against NumPy transcriptions of the rules, and bad input."""

import brainpy as bp
import brainpy.math as bm
import numpy as np
import pytest

from canns_stdp import PlasticProjection, rules
from canns_stdp.network import LayerLIF, Network, Projection, SpikeInput, StateMonitor, WeightMonitor, from_indices

DT = 0.1  # BrainPy's default step (ms)


@pytest.fixture(autouse=True)
def fresh_brainpy():
    bm.set_dt(DT)
    bm.clear_name_cache(ignore_warn=True)
    bm.random.seed(7)
    yield
    bm.clear_name_cache(ignore_warn=True)


def as_np(x):
    return np.asarray(bm.as_numpy(x))


# -- 1. BrainPy's STDP_Song2000 -------------------------------------------------------------------

TAU_S, TAU_T, A1, A2 = 16.8, 33.7, 0.96, 0.53   # the docstring's numbers


class SongNet(bp.DynamicalSystem):
    """The network of ``bp.dyn.STDP_Song2000``'s docstring, with BrainPy's projection or ours."""

    def __init__(self, delay, rule=None, w0=None):
        super().__init__()
        self.pre = bp.dyn.LifRef(1)
        self.post = bp.dyn.LifRef(1)
        syn, out = bp.dyn.Expon.desc(self.post.varshape, tau=5.), bp.dyn.COBA.desc(E=0.)
        if rule is None:
            # TrainingMode makes the weight a Variable, which stdp_update can change inside a loop (BrainPy's
            # own STDP test builds its comm so too). The docstring's EventCSRLinear over FixedProb(1) is one
            # synapse here, as AllToAll's, whose kernels build in a fraction of the time: used without a delay.
            if delay is None:
                comm = bp.dnn.AllToAll(1, 1, weight=bp.init.Uniform(max_val=0.1), mode=bm.TrainingMode())
            else:
                comm = bp.dnn.EventCSRLinear(bp.conn.FixedProb(1, pre=self.pre.num, post=self.post.num),
                                             weight=bp.init.Uniform(max_val=0.1), mode=bm.TrainingMode())
            self.syn = bp.dyn.STDP_Song2000(pre=self.pre, delay=delay, comm=comm, syn=syn, out=out, post=self.post,
                                            tau_s=TAU_S, tau_t=TAU_T, A1=A1, A2=A2)
        else:
            self.syn = PlasticProjection(self.pre, self.post, rule, conn=bp.conn.FixedProb(1), weight=w0, delay=delay,
                                         syn=syn, out=out, hardbound=False, tau_pre=TAU_S, tau_post=TAU_T,
                                         timing="brainpy")

    def weight(self):
        return self.syn.W.value if isinstance(self.syn, PlasticProjection) else self.syn.comm.weight

    def update(self, I_pre, I_post):
        arrived = self.syn.refs["delay"].at(self.syn.name)   # what BrainPy's delay delivers this step
        self.syn()
        self.pre(I_pre)
        self.post(I_post)
        return arrived, self.pre.spike.value, self.post.spike.value, bm.as_jax(self.weight()).reshape(-1)


def run_song(net):
    duration = 300.
    I_pre = bp.inputs.section_input([0, 30, 0, 30, 0, 30, 0, 30, 0, 30, 0, 30, 0],
                                    [5, 15, 15, 15, 15, 15, 100, 15, 15, 15, 15, 15, duration - 255])
    I_post = bp.inputs.section_input([0, 30, 0, 30, 0, 30, 0, 30, 0, 30, 0, 30, 0],
                                     [10, 15, 15, 15, 15, 15, 90, 15, 15, 15, 15, 15, duration - 250])
    out = bm.for_loop(net.step_run, [np.arange(int(duration / DT)), I_pre, I_post])
    return [as_np(x).reshape(len(I_pre), -1) for x in out]


@pytest.mark.parametrize("delay", [None, 1.0])
def test_song2000_docstring_network(delay):
    """The parameter mapping, from the two implementations:

    * BrainPy's traces are ``Expon`` variables (exact decay, +1 per spike): ``tau_pre = tau_s``,
      ``tau_post = tau_t``, cumulative traces; no ``W_min``/``W_max``: ``hardbound=False``;
    * in its update, before the neurons, it changes ``W`` by ``-A2 · Apost`` at the arriving
      spikes and ``+A1 · Apre`` at the target's spikes of the step before, then sends the input:
      ``timing="brainpy"``, additive pair rule, ``A_minus = A2``;
    * ``delay=None``: ``Apre`` includes this step's arrivals, ``Apost`` the target's spikes of the
      step before: the symmetric pairing, ``A_plus = A1``;
    * ``delay > 0``: BrainPy feeds ``Apre`` from its delay before pushing the step's spikes, so
      ``Apre`` ends one step before the arrivals, undecayed: the strict pairing's
      ``d_pre · trace`` with ``A_plus = A1 / d_pre``. The strict pairing's post trace leaves
      out the step before's post spike, which ``Apost`` has: the two agree while no spike
      arrives the step right after a post spike (checked on the run).
    """
    song = SongNet(delay)
    w0 = as_np(song.weight()).reshape(1)
    arrived, pre, post, W_song = run_song(song)
    if delay is None:
        rule = rules.pair(A1, A2, pairing="symmetric")
    else:
        rule = rules.pair(A1 / np.exp(-DT / TAU_S), A2, pairing="strict")
        assert not (post[:-1] & (arrived[1:] > 0)).any()   # where the strict pairing is BrainPy's
    ours = SongNet(delay, rule, w0)
    arrived_ours, pre_ours, post_ours, W_ours = run_song(ours)

    steps = np.diff(W_song[:, 0])
    assert post.sum() >= 5 and (steps > 0.1).sum() >= 3 and (steps < -0.1).sum() >= 3   # LTP and LTD happen
    np.testing.assert_array_equal(arrived_ours, arrived)
    np.testing.assert_array_equal(pre_ours, pre)
    np.testing.assert_array_equal(post_ours, post)
    np.testing.assert_allclose(W_ours, W_song, rtol=0, atol=1e-5)   # every step


# -- 2. the library's network engine ----------------------------------------------------------------

TAU_M, N_PRE, N_POST = 10.0, 30, 6


class DeltaNet(bp.DynSysGroup):
    """Poisson spikes → (delay 0.5 ms, delta synapses) → LifRef neurons, our projection between."""

    def __init__(self, conn, rule):
        super().__init__()
        self.inp = bp.dyn.PoissonGroup(N_PRE, freqs=60.)
        self.out = bp.dyn.LifRef(N_POST, V_rest=0., V_reset=0., V_th=1., R=1., tau=TAU_M)
        self.proj = PlasticProjection(self.inp, self.out, rule, conn=conn, weight=bp.init.Uniform(0.05, 0.3),
                                      delay=0.5, learning_rate=0.5, w_min=0., w_max=0.6, tau_pre=15., tau_post=25.)

    def update(self):
        arrived = self.proj.refs["delay"].at(self.proj.name)
        super().update()
        return arrived, self.out.spike.value, self.out.V.value, self.proj.W.value


def dense(connectivity, w, n_post, n_pre):
    """``(…, n_post, n_pre)`` weights from all-to-all or sparse ones (absent synapses: NaN)."""
    if not hasattr(connectivity, "indices"):   # all to all: W is (n_post, n_pre), flattened or not
        return w.reshape(w.shape[:-2 if w.shape[-2:] == (n_post, n_pre) else -1] + (n_post, n_pre))
    pre, post = connectivity.indices()
    full = np.full(w.shape[:-1] + (n_post, n_pre), np.nan, np.float32)
    full[..., post, pre] = w
    return full


@pytest.mark.parametrize("conn", ["all", "fixed_prob"])
def test_same_network_as_the_library_engine(conn):
    """LifRef with ``V_rest = V_reset = 0``, ``V_th = 1``, ``R = 1`` and delta input integrates
    ``V' = exp(-dt/τ) V`` exactly (``exp_auto``) and adds the input: the engine's ``LayerLIF``
    with ``leak = exp(-dt/τ)``. The engine is given, as its input's spikes, what BrainPy's delay
    delivered at each step. Run by ``bp.DSRunner``."""
    bp_conn = bp.conn.All2All() if conn == "all" else bp.conn.FixedProb(0.4, seed=3)
    rule = rules.pair(0.02, 0.021, pairing="causal", dependence="soft")
    net = DeltaNet(bp_conn, rule)
    W0 = net.proj.weights
    runner = bp.DSRunner(net, progress_bar=False)
    arrived, spikes, V, W = (as_np(x) for x in runner.run(duration=100.))
    T = arrived.shape[0]

    c = net.proj.connectivity
    engine_conn = "all" if conn == "all" else from_indices(*c.indices())
    engine = Network({"in": SpikeInput(N_PRE), "out": LayerLIF(N_POST, leak=np.exp(-DT / TAU_M), threshold=1.,
                                                                v_reset=0.)},
                     [Projection("in", "out", weights=0.0, connectivity=engine_conn, rule=rule, learning_rate=0.5,
                                 w_min=0., w_max=0.6, tau_pre=15., tau_post=25.)], dt=DT)
    ce = engine.connectivity("in->out")
    full0 = dense(c, W0, N_POST, N_PRE)
    engine.set_weights("in->out", full0 if conn == "all" else full0[ce.indices()[1], ce.indices()[0]])
    mon_s, mon_v, mon_w = StateMonitor("out", "spike"), StateMonitor("out", "v"), WeightMonitor("in->out")
    engine.run(inputs={"in": arrived.astype(np.float32)}, monitors=[mon_s, mon_v, mon_w])

    assert 20 < spikes.sum() < 0.3 * T * N_POST and np.nanmax(np.abs(W[-1] - W0)) > 0.05
    np.testing.assert_array_equal(mon_s.values.astype(bool), spikes.astype(bool))
    np.testing.assert_allclose(mon_v.values, V, rtol=0, atol=1e-5)
    np.testing.assert_allclose(dense(ce, mon_w.values, N_POST, N_PRE), dense(c, W, N_POST, N_PRE), rtol=0, atol=1e-5)


# -- 3. other rules against NumPy transcriptions --------------------------------------------------

class DecayingHebb(rules.Rule):
    """A user rule: Hebbian growth from the pre trace at post spikes, and a decay of every weight."""

    rate: float = 0.05
    decay: float = 0.002

    def update(self, state, pre, post, W, hebbian):
        return self.rate * hebbian(post.spikes, pre.trace) - self.decay * W, state


N_IN, N_OUT, TAU_PRE, TAU_POST, LR = 12, 4, 12.0, 18.0, 0.8
TRIPLET = dict(A2_plus=0.004, A3_plus=0.01, A2_minus=0.006, A3_minus=0.002, tau_x=40.0, tau_y=50.0)
REWARD_PAIR = dict(A_plus=0.02, A_minus=0.022)
CASES = {   # rule, connectivity, synapse and output, delay (ms)
    "triplet": (lambda: rules.triplet(**TRIPLET, dt=DT), "all", (bp.dyn.Expon, bp.dyn.CUBA.desc()), 0.3),
    "reward": (lambda: rules.reward(rules.pair(**REWARD_PAIR, pairing="causal"), "mstdpet", tau_z=8.0, dt=DT),
               "fixed_prob", None, None),
    "user": (lambda: DecayingHebb(), "all", (bp.dyn.DualExpon, bp.dyn.COBA.desc(E=3.)), 0.2),
}


class DrivenNet(bp.DynamicalSystem):
    """Poisson input → our projection → LifRef neurons held near threshold by a current."""

    def __init__(self, case):
        super().__init__()
        make_rule, conn, syn_out, delay = CASES[case]
        self.inp = bp.dyn.PoissonGroup(N_IN, freqs=80.)
        self.out = bp.dyn.LifRef(N_OUT, V_rest=0., V_reset=0., V_th=1., tau=10.)
        if syn_out is None:   # delta synapses
            syn, out = None, None
        else:                 # Expon aligns with the targets, DualExpon with the sources
            syn, out = syn_out[0].desc(N_OUT if syn_out[0] is bp.dyn.Expon else N_IN), syn_out[1]
        self.proj = PlasticProjection(self.inp, self.out, make_rule(),
                                      conn=bp.conn.All2All() if conn == "all" else bp.conn.FixedProb(0.6, seed=2),
                                      weight=bp.init.Uniform(0.2, 0.6), delay=delay, syn=syn, out=out,
                                      learning_rate=LR, w_min=0., w_max=1., tau_pre=TAU_PRE, tau_post=TAU_POST)

    def update(self, reward):
        arrived = self.proj.refs["delay"].at(self.proj.name)
        self.proj(reward=reward) if "reward" in self.proj.rule.extras() else self.proj()
        self.inp()
        self.out(0.85)
        return arrived, self.out.spike.value, self.proj.W.value


def numpy_reference(case, arrived, spikes, W0, mask, rewards):
    """The weights after every step, from the spikes the BrainPy run produced (float64)."""
    d_pre, d_post = np.exp(-DT / TAU_PRE), np.exp(-DT / TAU_POST)
    d_x, d_y = np.exp(-DT / TRIPLET["tau_x"]), np.exp(-DT / TRIPLET["tau_y"])
    d_e, gain = np.exp(-DT / 8.0), 1.0 / 8.0
    x, y = np.zeros(N_IN), np.zeros(N_OUT)
    r2, o2, e = np.zeros(N_IN), np.zeros(N_OUT), np.zeros((N_OUT, N_IN))
    W, out = W0.astype(np.float64), []
    for a, s, r in zip(arrived.astype(np.float64), spikes.astype(np.float64), rewards):
        y_before = d_post * y
        x, y = d_pre * x + a, d_post * y + s
        if case == "triplet":     # symmetric pairing: the traces with this step's spikes
            r2_dec, o2_dec = d_x * r2, d_y * o2
            dW = (np.outer(s * (TRIPLET["A2_plus"] + TRIPLET["A3_plus"] * o2_dec), x)
                  - np.outer(y, a * (TRIPLET["A2_minus"] + TRIPLET["A3_minus"] * r2_dec)))
            r2, o2 = r2_dec + a, o2_dec + s
        elif case == "reward":    # causal pair STDP, its eligibility, dW = r · e
            zeta = REWARD_PAIR["A_plus"] * np.outer(s, x) - REWARD_PAIR["A_minus"] * np.outer(y_before, a)
            e = d_e * e + gain * zeta * mask
            dW = r * e
        else:
            dW = 0.05 * np.outer(s, x) - 0.002 * W
        W = np.where(mask > 0, np.clip(W + LR * dW, 0.0, 1.0), W)
        out.append(W.copy())
    return np.array(out)


@pytest.mark.parametrize("case", list(CASES))
def test_rules_against_numpy(case):
    net = DrivenNet(case)
    c = net.proj.connectivity
    mask = np.ones((N_OUT, N_IN)) if not hasattr(c, "indices") else ~np.isnan(dense(c, np.zeros(c.shape), N_OUT, N_IN))
    W0 = np.nan_to_num(dense(c, net.proj.weights, N_OUT, N_IN))
    T = 1000
    rewards = np.random.default_rng(0).normal(0.5, 1.0, T).astype(np.float32)
    arrived, spikes, W = (as_np(x) for x in bm.for_loop(net.step_run, [np.arange(T), rewards]))
    want = numpy_reference(case, arrived, spikes, W0, mask.astype(np.float64), rewards)

    assert spikes.sum() > 20 and arrived.sum() > 50
    got = np.nan_to_num(dense(c, W, N_OUT, N_IN))
    assert np.abs(want[-1] - W0).max() > 0.05      # the rule did change the weights
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


# -- 4. bad input, settings, state -------------------------------------------------------------

def groups():
    return bp.dyn.LifRef(5), bp.dyn.LifRef(3)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(rule="pair"), TypeError, r"rule must be a canns_stdp.rules.Rule .*got 'pair'"),
    (dict(weight=np.ones((5, 3))), ValueError, r"weight must be .* shape \(3, 5\), got shape \(5, 3\)"),
    (dict(conn=bp.conn.FixedProb(0.5, pre=4, post=3)), ValueError, r"conn is built for 4 -> 3 .* 5 -> 3"),
    (dict(conn="dense"), ValueError, r"conn: connectivity must be 'all'.*got 'dense'"),
    (dict(conn=3), TypeError, r"conn must be None .* got 3"),
    (dict(syn=bp.dyn.Expon.desc(3)), ValueError, r"syn and out go together"),
    (dict(syn=bp.dyn.Expon, out=bp.dyn.CUBA.desc()), TypeError, r"syn must be a BrainPy description"),
    (dict(syn=bp.dyn.Expon.desc(5), out=bp.dyn.CUBA.desc()), ValueError,
     r"syn Expon must have the size of post \(3\), got size 5"),
    (dict(syn=bp.dyn.DualExpon.desc(3), out=bp.dyn.CUBA.desc()), ValueError,
     r"syn DualExpon must have the size of pre \(5\), got size 3"),
    (dict(timing="later"), ValueError, r"timing must be one of \('network', 'brainpy'\), got 'later'"),
    (dict(learning_rate=-1.0), ValueError, r"learning_rate must be >= 0, got -1.0"),
    (dict(w_min=1.0, w_max=1.0), ValueError, r"w_min must be < w_max .* got w_min=1.0, w_max=1.0"),
    (dict(tau_pre=0.0), ValueError, r"tau_pre must be > 0, got 0.0"),
    (dict(delay=-0.5), ValueError, r"delay must be >= 0, got -0.5"),
])
def test_bad_arguments_name_the_parameter_and_change_nothing(kwargs, error, message):
    pre, post = groups()
    before = (dict(post.after_updates), dict(post.before_updates), dict(pre.after_updates), dict(post.cur_inputs),
              dict(post.delta_inputs))
    args = dict(rule=rules.pair(), name="p")
    args.update(kwargs)
    with pytest.raises(error, match=message):
        PlasticProjection(pre, post, **args)
    assert (dict(post.after_updates), dict(post.before_updates), dict(pre.after_updates), dict(post.cur_inputs),
            dict(post.delta_inputs)) == before
    PlasticProjection(pre, post, rules.pair(), name="p")   # the name is still free


class WrongShape(rules.Rule):
    def update(self, state, pre, post, W, hebbian):
        return hebbian(post.spikes, pre.spikes)[0], state


class NeedsDopamine(rules.Rule):
    def update(self, state, pre, post, W, hebbian, dopamine):
        return dopamine * hebbian(post.spikes, pre.spikes), state


def test_rules_that_do_not_fit_are_refused_by_name():
    pre, post = groups()
    with pytest.raises(ValueError, match=r"rule WrongShape must return dW of W's shape \(3, 5\), got shape \(5,\)"):
        PlasticProjection(pre, post, WrongShape())
    with pytest.raises(ValueError, match=r"rule NeedsDopamine needs per-step inputs \['dopamine'\]"):
        PlasticProjection(pre, post, NeedsDopamine())
    with pytest.raises(TypeError, match=r"pre must be a BrainPy neuron group .* got 5"):
        PlasticProjection(5, post, rules.pair())
    with pytest.raises(ValueError, match=r"pre must be in a non-batching mode, got TrainingMode"):
        PlasticProjection(bp.dyn.LifRef(5, mode=bm.TrainingMode()), post, rules.pair())
    proj = PlasticProjection(pre, post, rules.pair())
    with pytest.raises(TypeError, match=r"reward= is given but rule Pair takes no reward"):
        proj.update(reward=1.0)
    rewarded = PlasticProjection(pre, post, rules.reward(rules.pair(), "mstdp"))
    with pytest.raises(ValueError, match=r"reward must be one number per step, got shape \(2,\)"):
        rewarded.update(reward=np.ones(2))
    assert float(rewarded.reward.value) == 0.0


def test_weights_and_settings_are_checked_and_a_failed_set_changes_nothing():
    pre, post = groups()
    proj = PlasticProjection(pre, post, rules.pair(), weight=np.arange(15.0).reshape(3, 5) / 20)
    np.testing.assert_array_equal(proj.weights, np.arange(15.0, dtype=np.float32).reshape(3, 5) / 20)
    with pytest.raises(ValueError, match=r"weight must be .* \(3, 5\), got shape \(15,\)"):
        proj.weights = np.zeros(15)
    with pytest.raises(ValueError, match=r"w_min must be < w_max .* got w_min=2.0, w_max=1.0"):
        proj.bounds = (2.0, 1.0)
    with pytest.raises(ValueError, match=r"learning_rate must be >= 0, got -0.1"):
        proj.learning_rate = -0.1
    with pytest.raises(TypeError, match=r"learning must be True or False, got 1"):
        proj.learning = 1
    assert proj.weights[2, 4] == np.float32(0.7) and proj.bounds == (0.0, 1.0) and proj.learning_rate == 1.0
    proj.weights, proj.bounds, proj.learning_rate = 0.25, (-1.0, 2.0), 0.5
    assert (proj.weights == 0.25).all() and proj.bounds == (-1.0, 2.0) and proj.learning_rate == 0.5


def test_learning_off_holds_the_weights_while_the_traces_move():
    net = DrivenNet("triplet")
    net.proj.learning = False
    W0 = net.proj.weights
    bm.for_loop(net.step_run, [np.arange(300), np.zeros(300, np.float32)])
    np.testing.assert_array_equal(net.proj.weights, W0)
    assert as_np(net.proj.trace_pre.value).max() > 0.5 and as_np(net.proj.rule_state[0].value).max() > 0.5
    net.proj.reset_state()
    assert not as_np(net.proj.trace_pre.value).any() and not as_np(net.proj.rule_state[0].value).any()
    np.testing.assert_array_equal(net.proj.weights, W0)
