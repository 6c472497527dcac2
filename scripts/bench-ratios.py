#!/usr/bin/env python3
"""Ratios of wrk runs against a baseline measured in the same rounds.

    bench-ratios.py BASELINE NAME=FILE ...

Each FILE holds one line per round, "requests/s p99" (wrk's p99 as it prints it: 1.2ms, 850us).
Prints, per NAME, the medians and the median of the rounds' ratios to BASELINE (a NAME too):
each round's runs are seconds apart, so their ratio is the fairest comparison on a machine whose
speed drifts.
"""
import re
import statistics
import sys


def milliseconds(text):
    number = re.match(r"[0-9.]+", text).group()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[text[len(number):]]


def main():
    baseline, pairs = sys.argv[1], [arg.split("=", 1) for arg in sys.argv[2:]]
    rows = {name: [line.split() for line in open(path) if line.strip()] for name, path in pairs}
    base = rows[baseline]
    width = max(len(name) for name in rows)
    for name, runs in rows.items():
        rps = statistics.median(float(run[0]) for run in runs)
        p99 = statistics.median(milliseconds(run[1]) for run in runs)
        line = f"{name:<{width}}  {rps:9.0f} req/s  p99 {p99:7.2f} ms"
        if name != baseline:
            count = min(len(runs), len(base))
            throughput = [float(runs[i][0]) / float(base[i][0]) for i in range(count)]
            latency = [milliseconds(runs[i][1]) / milliseconds(base[i][1]) for i in range(count)]
            line += (
                f"  / {baseline}: {statistics.median(throughput):.2f}x throughput, p99 {statistics.median(latency):.2f}x"
                f"  (rounds: {' '.join(f'{r:.2f}' for r in throughput)})"
            )
        print(line)


if __name__ == "__main__":
    main()
