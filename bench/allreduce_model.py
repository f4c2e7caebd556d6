#!/usr/bin/env python3
"""Where data-parallel crest stops scaling: per-step compute against the ring all-reduce of the gradients.

    bench/allreduce_model.py --model cnn:421642:0.0123 --model resnet18:11689512[:STEP_S] [--network NAME:GBPS:LAT_US]

Each step, every rank computes forward and backward on its own batch of B images (c seconds, measured on one rank),
then the ranks sum their gradients with one all-reduce. crest's backward returns only once every gradient is there,
so nothing overlaps: a step takes c + T(N), with the ring all-reduce's

    T(N) = 2(N-1)/N * bytes / bandwidth + 2(N-1) * latency

(reduce-scatter then all-gather: each of the 2(N-1) rounds sends 1/N of the gradient bytes to the next rank and pays
one message latency). With B images per rank (crest's --bs under mpirun), N ranks process N*B images per step: the
throughput over one process is N*c / (c + T(N)) and the efficiency c / (c + T(N)). Bytes are the f32 gradients,
4 per parameter (plus crest's few flags and the loss, negligible).

A model given without STEP_S gets only its all-reduce times and the compute a step needs for 50% efficiency (c = T).
"""
import argparse
import math

RANKS = [2, 4, 8, 16, 32, 64]
# Bandwidth in Gb/s and one message's latency in microseconds: TCP over 10 Gb Ethernet, RDMA over 100 Gb links.
NETWORKS = ["10Gb/s:10:25", "100Gb/s:100:3"]


def allreduce_s(n, nbytes, gbps, latency_us):
    return 2 * (n - 1) / n * nbytes / (gbps * 1e9 / 8) + 2 * (n - 1) * latency_us * 1e-6


def parse_model(text):
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME:PARAMS[:STEP_SECONDS]")
    step = float(parts[2]) if len(parts) == 3 and parts[2] else None
    return parts[0], int(parts[1]), step


def parse_network(text):
    name, gbps, lat = text.split(":")
    return name, float(gbps), float(lat)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", type=parse_model, required=True,
                    help="NAME:PARAMS[:STEP_SECONDS] (per-step compute on one rank)")
    ap.add_argument("--network", action="append", type=parse_network,
                    help=f"NAME:GBPS:LATENCY_US (default {' and '.join(NETWORKS)})")
    ap.add_argument("--ranks", default=",".join(map(str, RANKS)), help="comma-separated N")
    a = ap.parse_args()
    networks = a.network or [parse_network(n) for n in NETWORKS]
    ranks = [int(n) for n in a.ranks.split(",")]

    print("| model | network | N | all-reduce ms | step ms | throughput × one rank | efficiency |")
    print("|---|---|---:|---:|---:|---:|---:|")
    notes = []
    for name, params, step in a.model:
        nbytes = 4 * params
        for net, gbps, lat in networks:
            below = None
            for n in ranks:
                t = allreduce_s(n, nbytes, gbps, lat)
                if step is None:
                    print(f"| {name} ({nbytes / 1e6:.1f} MB) | {net} | {n} | {t * 1e3:.2f} | – | – | – |")
                    continue
                eff = step / (step + t)
                if eff < 0.5 and below is None:
                    below = n
                print(f"| {name} ({nbytes / 1e6:.1f} MB) | {net} | {n} | {t * 1e3:.2f} | {(step + t) * 1e3:.2f} "
                      f"| {n * eff:.1f} | {eff:.0%} |")
            big = allreduce_s(ranks[-1], nbytes, gbps, lat)
            if step is None:
                notes.append(f"{name} on {net}: 50% efficiency needs at least {big * 1e3:.1f} ms of compute per "
                             f"step at N={ranks[-1]} (the all-reduce time)")
            else:
                # Throughput N*c/(c + T(N)) tends to c / (2 * latency) as N grows: the latency term caps it.
                cap = step / (2 * lat * 1e-6)
                where = f"falls below 50% at N={below}" if below else f"stays at or above 50% up to N={ranks[-1]}"
                notes.append(f"{name} on {net}: compute {step * 1e3:.1f} ms/step, efficiency {where}; "
                             f"throughput can never pass {cap:,.0f}× one rank (latency bound)")
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
