"""accelsim, ASTRA-sim and SimAI on the same published collective cases.

The measured figures are the cited rows of ``tests/data/collectives/{nccl,deepep}.csv``
(nccl-tests bus bandwidths, DeepEP's bottleneck bandwidths; sources in the README there).
The peers' figures are ``tests/data/collectives/peers.csv``: each row says how it was
obtained (``run``: the peer's own code on this machine, its commit and inputs named) or why
the peer has none (``not modelled``). No peer figure is typed in by hand: ``--run-astra-sim``
and ``--run-simai`` regenerate them by running the peers.

- **ASTRA-sim** (astra-sim/astra-sim, analytical backend: congestion-aware inside one
  domain, congestion-unaware across domains, the aware one taking one dimension only): one Chakra
  execution trace per rank holding the one collective; the network a ``Switch`` (or
  ``FullyConnected`` for a mesh) per scale-up domain, a second ``Switch`` dimension across
  domains, with the per-rank link rates and latencies of the same topology file accelsim
  reads (nominal rates: ASTRA-sim has no efficiency factors; for the 8 x H100 board ASTRA-sim's
  own calibrated ``HGX-H100-validated`` network and system), the system file of that
  validated example (NCCL-like ring, 2 active chunks, 4 splits), ``direct`` for all-to-all
  and for all-reduce on a mesh (HCCL's algorithm on Gaudi's direct links; a ring there uses
  one of the seven peer links and reads 40 GB/s). Run twice: at those nominal rates
  (``astra-sim``) and at accelsim's effective rates (``astra-sim-eff``: each link times the
  topology's ring/tree or all-to-all efficiency), so that what differs is the algorithms.
- **SimAI** (aliyun/SimAI, its analytical mode): the bus bandwidth of
  ``Layer::compute_time``: ``cal_busbw`` (``astra-sim-alibabacloud/astra-sim/system/
  calbusbw.cc``, compiled unmodified with a driver) times ``cal_ratio`` (its measured
  efficiency tables ``inputs/ratio/*.csv``); all-reduce takes the ring figure, as SimAI's
  analytical mode does. It knows NVIDIA A100/A800/H100/H800/H20 boards only.

Each peer's time is turned into the row's metric with accelsim's definitions
(``accelsim.devices.fabric``): bus bandwidth ``M/t x 2(n-1)/n`` (all-reduce), ``M/t x (n-1)/n``
(all-to-all), or DeepEP's bytes on the binding link over ``t``.

    python benchmarks/peer_collectives.py            # the table from the data files
    python benchmarks/peer_collectives.py --run-astra-sim /path/to/astra-sim \\
        --run-simai /path/to/simai_busbw_dir          # rerun the peers, rewrite peers.csv
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from accelsim.devices import topology as T

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "collectives"
PEERS = DATA / "peers.csv"
FIELDS = ["id", "peer", "value_GBps", "how", "version", "inputs"]
PEER_NAMES = ("astra-sim", "astra-sim-eff", "simai")
LABELS = {"astra-sim": "ASTRA-sim", "astra-sim-eff": "ASTRA-sim eff", "simai": "SimAI"}
TOL = 0.15

# ASTRA-sim's calibrated 8 x H100 network (examples/network/analytical/HGX-H100-validated.yml)
ASTRA_H100 = {"bandwidth_GBps": 400.0, "latency_ns": 936.25}
# SimAI's calbusbw NIC constants are achieved rates: CX7 48.5 GB/s of 50 (0.97); other NICs
# are passed at the same fraction of their line rate
SIMAI_NIC_FRACTION = 48.5 / 50.0
SIMAI_GPU = {"hgx-h100-8": "H100", "gcp-a3-mega.yaml": "H100", "oci-bm-gpu4-8.yaml": "A100",
             "hgx-h800-8": "H800"}


def measured_rows() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for name in ("nccl.csv", "deepep.csv"):
        with open(DATA / name, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def peer_rows() -> list[dict[str, str]]:
    with open(PEERS, newline="") as f:
        return list(csv.DictReader(f))


def system(ref: str) -> T.Topology:
    return T.load_topology(DATA / ref if ref.endswith(".yaml") else ref)


def accelsim_GBps(r: dict[str, str]) -> float:
    f = {"busbw": T.busbw_allreduce, "busbw_a2a": T.busbw_all_to_all,
         "bottleneck": T.a2a_bottleneck_Bps}[r["metric"]]
    return float(f(system(r["system"]), float(r["size_B"]), float(r["n"]),
                   float(r["stride"]))) / 1e9


def _split(t: T.Topology, n: int) -> tuple[int, int]:
    """(ranks per domain g, domains k) of a group of n consecutive ranks."""
    per = int(t.scaleup.domain.value) * int(t.scaleup.ranks_per_device)
    g = min(n, per)
    return g, -(-n // g)


def _astra_dims(t: T.Topology, n: int) -> tuple[int, int]:
    """ASTRA-sim's dimensions for n ranks: the largest divisor of n a domain holds, times the
    domains (128 GB300s on two 72-GPU racks: 64 x 2)."""
    per = int(t.scaleup.domain.value) * int(t.scaleup.ranks_per_device)
    g = max(d for d in range(1, min(n, per) + 1) if n % d == 0)
    return g, n // g


def metric_from_time(r: dict[str, str], t_s: float) -> float:
    """The row's metric (GB/s) of a collective that took ``t_s`` seconds."""
    M, n = float(r["size_B"]), int(r["n"])
    if r["metric"] == "busbw":
        return M / t_s * 2 * (n - 1) / n / 1e9
    if r["metric"] == "busbw_a2a":
        return M / t_s * (n - 1) / n / 1e9
    g, k = _split(system(r["system"]), n)
    on_link = (n - g) / n * M if k > 1 else (g - 1) / n * M
    return on_link / t_s / 1e9


# --- ASTRA-sim ------------------------------------------------------------------------------

def astra_network(r: dict[str, str], effective: bool = False) -> tuple[str, str]:
    """(network YAML, description) for one row: the topology file's per-rank rates, nominal,
    or ``effective``: times accelsim's fitted or assumed efficiencies (ring/tree, or the
    all-to-all kernels'; no in-switch reduction, no per-peer cost: ASTRA-sim has neither)."""
    t = system(r["system"])
    n = int(r["n"])
    g, k = _astra_dims(t, n)
    s, o = t.scaleup, t.scaleout
    ranks = int(s.ranks_per_device)
    a2a = r["collective"] == "all_to_all"
    e_up = (s.a2a_efficiency.value if a2a else s.efficiency.value) if effective else 1.0
    e_out = (o.a2a_efficiency.value if a2a else o.efficiency.value) if effective else 1.0
    if r["system"] == "hgx-h100-8" and not effective:
        up, up_lat = ASTRA_H100["bandwidth_GBps"], ASTRA_H100["latency_ns"]
    else:
        up = s.links.value * s.link_GBps.value / ranks * e_up
        up_lat = s.latency_us.value * 1e3
    if s.fabric == "mesh":
        kind, up = "FullyConnected", up / (g - 1)  # per peer link
    else:
        kind = "Switch"
    nic = o.nic_Gbps.value * o.nics_per_device.value / 8 / ranks * e_out
    out_lat = o.latency_us.value * 1e3
    if k == 1:
        topo, counts, bws, lats = [kind], [g], [up], [up_lat]
    else:
        topo, counts, bws, lats = [kind, "Switch"], [g, k], [up, nic], [up_lat, out_lat]
    yml = (f"topology: [ {', '.join(topo)} ]\nnpus_count: [ {', '.join(map(str, counts))} ]\n"
           f"bandwidth: [ {', '.join(f'{b:.4f}' for b in bws)} ]\n"
           f"latency: [ {', '.join(f'{x:.2f}' for x in lats)} ]\n")
    desc = " x ".join(f"{c} {tp} {b:.1f} GB/s {lt:.0f} ns" for tp, c, b, lt
                      in zip(topo, counts, bws, lats, strict=True))
    return yml, desc


def _write_et(pb2, path: Path, name: str, n: int, size_B: int) -> None:
    """One Chakra trace per rank holding one collective (as ASTRA-sim's
    examples/workload/microbenchmarks/generator_scripts do)."""
    from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[import-untyped]

    comm = {"all_reduce": pb2.ALL_REDUCE, "all_to_all": pb2.ALL_TO_ALL}[name]
    path.mkdir(parents=True, exist_ok=True)
    for rank in range(n):
        with open(path / f"{name}.{rank}.et", "wb") as f:
            for msg in (pb2.GlobalMetadata(version="0.0.4"), _node(pb2, name, comm, size_B)):
                data = msg.SerializeToString()
                f.write(_VarintBytes(len(data)))
                f.write(data)


def _node(pb2, name: str, comm: int, size_B: int):  # type: ignore[no-untyped-def]
    node = pb2.Node()
    node.id = 0
    node.name = name
    node.type = pb2.COMM_COLL_NODE
    node.attr.append(pb2.AttributeProto(name="is_cpu_op", bool_val=False))
    node.attr.append(pb2.AttributeProto(name="comm_type", int64_val=comm))
    node.attr.append(pb2.AttributeProto(name="comm_size", int64_val=size_B))
    return node


def run_astra_sim(root: Path, rows: list[dict[str, str]], effective: bool = False
                  ) -> list[dict[str, str]]:
    sys.path.insert(0, str(root / "extern/graph_frontend/chakra/schema/protobuf"))
    import et_def_pb2 as pb2  # type: ignore[import-not-found]

    bindir = root / "build/astra_analytical/build/bin"
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    sys_cfg = (root / "examples/system/native_collectives/HGX-H100-validated.json").read_text()
    sys_cfg = sys_cfg.replace('"all-to-all-implementation": [\n        "ring"\n    ]',
                              '"all-to-all-implementation": [\n        "direct"\n    ]')
    mem = root / "examples/remote_memory/analytical/no_memory_expansion.json"
    out = []
    for r in rows:
        n, size = int(r["n"]), int(r["size_B"])
        net, desc = astra_network(r, effective)
        dims = 1 if _astra_dims(system(r["system"]), n)[1] == 1 else 2
        mesh = system(r["system"]).scaleup.fabric == "mesh"
        key = '"all-reduce-implementation": [\n        '
        cfg = sys_cfg.replace(key + '"ring"', key + '"direct"') if mesh else sys_cfg
        cfg = re.sub(r'\[\s*("(?:ring|direct)")\s*\]',
                     lambda m, d=dims: "[" + ", ".join([m.group(1)] * d) + "]", cfg)
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "net.yml").write_text(net)
            (d / "sys.json").write_text(cfg)
            _write_et(pb2, d / "et", r["collective"], n, size)
            backend = "Congestion_Aware" if dims == 1 else "Congestion_Unaware"
            res = subprocess.run([str(bindir / f"AstraSim_Analytical_{backend}"),
                                  f"--workload-configuration={d}/et/{r['collective']}",
                                  f"--system-configuration={d}/sys.json",
                                  f"--remote-memory-configuration={mem}",
                                  f"--network-configuration={d}/net.yml"],
                                 capture_output=True, text=True, timeout=1800)
        cycles = [int(c) for c in re.findall(r"sys\[\d+\] finished, (\d+) cycles",
                                             res.stdout + res.stderr)]
        if not cycles:
            raise RuntimeError(f"ASTRA-sim gave no time for {r['id']}:\n{res.stdout[-2000:]}"
                               f"{res.stderr[-2000:]}")
        t_s = max(cycles) * 1e-9  # one cycle is 1 ns in the analytical backend
        value = f"{metric_from_time(r, t_s):.2f}"
        peer = "astra-sim-eff" if effective else "astra-sim"
        out.append({"id": r["id"], "peer": peer, "value_GBps": value,
                    "how": "run", "version": f"astra-sim/astra-sim@{commit[:8]}",
                    "inputs": f"{backend.lower()}: {desc}; "
                              f"{'direct' if r['collective'] == 'all_to_all' or mesh else 'ring'}"})
        print(f"  {peer} {r['id']}: {out[-1]['value_GBps']} GB/s", file=sys.stderr)
    return out


# --- SimAI ----------------------------------------------------------------------------------

def simai_args(r: dict[str, str]) -> list[str] | None:
    """Arguments of the calbusbw driver for a row (Layer::compute_time's mapping), or None."""
    gpu = SIMAI_GPU.get(r["system"])
    if gpu is None:
        return None
    t = system(r["system"])
    n = int(r["n"])
    g, k = _split(t, n)
    nic = t.scaleout.nic_Gbps.value / 8 * SIMAI_NIC_FRACTION
    nics = t.scaleout.nics_per_device.value * 8
    coll = {"all_reduce": "allreduce", "all_to_all": "alltoall"}[r["collective"]]
    group = "ep" if coll == "alltoall" else "tp"
    return [gpu, "0", f"{nic:.4f}", f"{nics:g}", str(k), coll, str(g), r["size_B"], group, "1"
            if group == "ep" else str(n), str(n)]


def run_simai(bindir: Path, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    commit = (bindir / "COMMIT").read_text().strip()
    out = []
    for r in rows:
        args = simai_args(r)
        if args is None:
            out.append({"id": r["id"], "peer": "simai", "value_GBps": "", "how": "not modelled",
                        "version": f"aliyun/SimAI@{commit[:8]}",
                        "inputs": "calbusbw knows NVIDIA A100/A800/H100/H800/H20 boards only"})
            continue
        res = subprocess.run([str(bindir / "simai_busbw"), *args], capture_output=True,
                             text=True, cwd=bindir, check=True)
        busbw = float(re.search(r"RESULT busbw_GBps=([0-9.]+)", res.stdout).group(1))  # type: ignore[union-attr]
        M, n = float(r["size_B"]), int(r["n"])
        # compute_time: t = M (n-1)/n / busbw, twice that for all-reduce
        t_s = M * (n - 1) / n / (busbw * 1e9) * (2 if r["collective"] == "all_reduce" else 1)
        out.append({"id": r["id"], "peer": "simai", "value_GBps": f"{metric_from_time(r, t_s):.2f}",
                    "how": "run", "version": f"aliyun/SimAI@{commit[:8]}",
                    "inputs": "cal_busbw(" + ", ".join(args[:7]) + f") x cal_ratio({args[8]})"})
    return out


# --- the table ------------------------------------------------------------------------------

def table() -> list[dict[str, object]]:
    peers: dict[tuple[str, str], dict[str, str]] = {(p["id"], p["peer"]): p for p in peer_rows()}
    out = []
    for r in measured_rows():
        meas = float(r["measured_GBps"])
        row: dict[str, object] = {"id": r["id"], "system": r["system"], "status": r["status"],
                                  "measured": meas, "accelsim": accelsim_GBps(r)}
        for peer in PEER_NAMES:
            p = peers.get((r["id"], peer))
            row[peer] = float(p["value_GBps"]) if p and p["value_GBps"] else None
            row[peer + "_why"] = (p["how"] if p else "not run")
        out.append(row)
    return out


def _err(x: object, meas: float) -> str:
    return f"{float(x) / meas - 1:+.1%}" if isinstance(x, float) else "-"  # type: ignore[arg-type]


def _geomean_abs(rows: list[dict[str, object]], key: str) -> str:
    e = [abs(float(r[key]) / float(r["measured"]) - 1) for r in rows  # type: ignore[arg-type]
         if isinstance(r[key], float)]
    if not e:
        return "-"
    return f"{len(e)} rows, mean |error| {np.mean(e):.1%}, within 15 %: {sum(x <= TOL for x in e)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-astra-sim", type=Path, help="an ASTRA-sim checkout, built")
    ap.add_argument("--run-simai", type=Path, help="the directory of the calbusbw driver")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    if a.run_astra_sim or a.run_simai:
        rows = measured_rows()
        kept = [p for p in peer_rows()
                if not ((p["peer"].startswith("astra-sim") and a.run_astra_sim)
                        or (p["peer"] == "simai" and a.run_simai))]
        new = []
        if a.run_astra_sim:
            new += run_astra_sim(a.run_astra_sim, rows)
            new += run_astra_sim(a.run_astra_sim, rows, effective=True)
        if a.run_simai:
            new += run_simai(a.run_simai, rows)
        with open(PEERS, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(sorted(kept + new, key=lambda p: (p["peer"], p["id"])))
    rows = table()

    def fmt(x: object) -> str:
        return f"{x:.1f}" if isinstance(x, float) else "n/a"

    head = ["case", "status", "measured GB/s", "accelsim", "err"]
    for label in LABELS.values():
        head += [label, "err"]
    lines = []
    for r in rows:
        m = float(r["measured"])  # type: ignore[arg-type]
        line = [str(r["id"]), str(r["status"]), f"{m:g}", fmt(r["accelsim"]),
                _err(r["accelsim"], m)]
        for peer in PEER_NAMES:
            line += [fmt(r[peer]) if r[peer] is not None else str(r[peer + "_why"]),
                     _err(r[peer], m)]
        lines.append(line)
    if a.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
        for ln in lines:
            print("| " + " | ".join(ln) + " |")
    else:
        w = [max(len(h), *(len(ln[i]) for ln in lines)) for i, h in enumerate(head)]
        print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
        for ln in lines:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(ln)))
    covered = [r for r in rows if r["status"] in ("test", "fit")]
    print()
    for key, label in (("accelsim", "accelsim"), *LABELS.items()):
        print(f"{label} on the test/fit rows: {_geomean_abs(covered, key)}")
        print(f"{label} on all rows: {_geomean_abs(rows, key)}")


if __name__ == "__main__":
    main()
