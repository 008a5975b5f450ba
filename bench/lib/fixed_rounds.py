"""The fixed-rounds timing the layout benchmarks' MLX sides share: `rounds` timed calls after two
warm-up calls, each call building the graph and evaluating it; the median in nanoseconds."""
import time

import mlx.core as mx


def median_ns(f, rounds):
    ns = []
    for r in range(rounds + 2):
        t0 = time.perf_counter_ns()
        mx.eval(f())
        t = time.perf_counter_ns() - t0
        if r >= 2:
            ns.append(t)
    ns.sort()
    return ns[len(ns) // 2]
