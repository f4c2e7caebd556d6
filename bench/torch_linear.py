"""PyTorch's side of `cargo run --release --example gemm_compare linear`: relu(addmm(b, x, W.t())) for W [256, 784],
µs, best of 7 timed runs (each a mean over enough calls to last ~20 ms), as crest's `best_secs` measures.

    OMP_WAIT_POLICY=ACTIVE /tmp/torchenv/bin/python bench/torch_linear.py
"""
import time

import torch


def best_us(f):
    t = time.perf_counter()
    f()
    inner = max(1, min(10_000, int(0.02 / max(time.perf_counter() - t, 1e-7))))
    best = float("inf")
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(inner):
            f()
        best = min(best, (time.perf_counter() - t) / inner)
    return best * 1e6


def main():
    k, n = 784, 256
    print(f"relu(x·Wᵀ + b), W [{n}, {k}], µs (best of 7), torch {torch.__version__}")
    with torch.no_grad():
        for threads, m in [(1, 128), (1, 500), (2, 1000)]:
            torch.set_num_threads(threads)
            x, w, b = torch.rand(m, k), torch.rand(n, k), torch.rand(n)
            us = best_us(lambda: torch.relu(torch.addmm(b, x, w.t())))
            print(f"{m} rows, {threads} thread(s)   {us:14.0f}")


if __name__ == "__main__":
    main()
