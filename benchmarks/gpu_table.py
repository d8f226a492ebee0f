"""The GPU run's rows as Markdown tables (``benchmarks/gpu.py``): one table per section,
ratios worked out from rows measured in the same run (and, for the networks' ratio to
the CPU path, from the rows of a CPU run given to it)."""

from __future__ import annotations

import json


def read_rows(path) -> list:
    """The rows of a ``.jsonl`` (one JSON object per line) or ``.json`` (a list) file."""
    with open(path) as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _n(x, fmt=",.0f") -> str:
    return "-" if x is None else format(x, fmt)


def _ratio(a, b) -> str:
    return "-" if a is None or not b else f"{a / b:.1f}x"


def _table(head, lines) -> list:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(map(str, r)) + " |"
                                                                         for r in lines]


def tables(rows, cpu_rows=()) -> str:
    """Markdown: the device line, then a table per section that has measured rows, then
    the rows that failed or were skipped."""
    of = {}
    for r in rows:
        if "error" not in r and "skipped" not in r:
            of.setdefault(r["section"], []).append(r)
    out = []
    for h in of.get("device", []):
        out.append(f"{h['device']} ({h['backend']}; host {h.get('host', '?')}), JAX {h['jax']}, "
                   f"BrainPy {h['brainpy']}, {h['date']}; "
                   f"copy bandwidth {h['copy_bandwidth'] / 1e12:.2f} TB/s (read + write)")
    if "layers" in of:
        out += ["", "Layers (steps/s; trainer: end to end through the trainer's calls, the input on the device "
                "as CANNs is given it; from NumPy: the input a NumPy array and the spikes returned; kernel: the fused "
                "kernel alone):", ""]
        out += _table(["layer", "regime", "firing", "trainer", "from NumPy", "kernel", "% of roofline", "plain XLA",
                       "CANNs 1.5", "trainer / CANNs"],
                      [[r["layer"], r["regime"], f"{r['firing']:.1%}", _n(r["trainer"]), _n(r.get("trainer_from_host")),
                        _n(r["kernel"]),
                        f"{r['kernel'] / r['roofline_steps_per_s']:.0%}", _n(r["xla"]), _n(r.get("canns")),
                        _ratio(r["trainer"], r.get("canns"))] for r in of["layers"]])
    if "event" in of:
        out += ["", "The event-driven XLA kernels (sparse regime, the input on the device):", ""]
        out += _table(["layer", "firing", "steps/s"],
                      [[r["layer"], f"{r['firing']:.1%}", _n(r["steps_per_s"])] for r in of["event"]])
    if "agreement" in of:
        out += ["", "Against the plain step on the host CPU (largest |W difference|, fraction of spikes that differ):",
                ""]
        out += _table(["layer", "regime", "steps", "CPU firing", "fused", "", "plain XLA", ""],
                      [[r["layer"], r["regime"], r["steps"], f"{r['cpu_firing']:.1%}", f"{r['fused_max_dW']:.1e}",
                        f"{r['fused_spike_flips']:.1e}", f"{r['xla_max_dW']:.1e}", f"{r['xla_spike_flips']:.1e}"]
                       for r in of["agreement"]])
    streaming = of.get("streaming", []) + of.get("sweep", [])
    if streaming:
        out += ["", "The fused kernel streaming W (sparse regime):", ""]
        out += _table(["layer", "tiling", "steps/s", "roofline", "% of roofline"],
                      [[r["layer"], r["tiling"], _n(r["steps_per_s"]), _n(r["roofline_steps_per_s"]),
                        f"{r['fraction_of_roofline']:.0%}"] for r in streaming])
    if "ensembles" in of:
        out += ["", "Ensembles (K trainers in one call against one trainer alone):", ""]
        out += _table(["layer", "members", "one trainer steps/s", "ensemble member-steps/s", "ratio",
                       "member 0 against the trainer alone (max dW)"],
                      [[r["layer"], r["members"], _n(r["one_trainer_steps_per_s"]),
                        _n(r["ensemble_member_steps_per_s"]), f"{r['ratio']:.1f}x", f"{r['member_0_max_dW']:.1e}"]
                       for r in of["ensembles"]])
    if "networks" in of:
        cpu = {(r["network"], r["neurons"], r["synapses"]): r for r in cpu_rows
               if r.get("section") == "networks" and "steps_per_s" in r}  # the same network, drawn alike
        out += ["", "Plastic networks (steps/s; the CPU path from a CPU run's rows where given):", ""]
        lines = []
        for r in of["networks"]:
            c = cpu.get((r["network"], r["neurons"], r["synapses"]), {})
            check = "-"
            if "check_steps" in r:
                check = (f"{r['spikes_differing']} of {r['spikes']} spikes, max dW {r['max_dW']:.1e} "
                         f"({r['check_steps']} steps)")
            lines.append([r["network"], f"{r['neurons']:,}", f"{r['synapses']:,}", r["backend"], _n(r["steps_per_s"]),
                          _n(c.get("steps_per_s")), _ratio(r["steps_per_s"], c.get("steps_per_s")), check])
        out += _table(["network", "neurons", "synapses", "backend", "steps/s", "CPU path steps/s", "ratio",
                       "against the host CPU's plain step"], lines)
    failed = [r for r in rows if "error" in r or "skipped" in r]
    if failed:
        out += ["", "Not measured:", ""] + [f"- {r['label']}: {r.get('error') or r['skipped']}" for r in failed]
    return "\n".join(out) + "\n"
