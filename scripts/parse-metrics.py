#!/usr/bin/env python3
"""Parses a Prometheus text-format scrape on standard input with prometheus_client's parser
(the reference implementation's rules) and prints every sample as one JSON object a line:
{"name": ..., "labels": {...}, "value": ...}. A scrape the parser refuses exits 1."""
import json
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.stderr.write("prometheus_client is not installed: python3 -m pip install prometheus_client\n")
    sys.exit(2)

text = sys.stdin.read()
try:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            print(json.dumps({"name": sample.name, "labels": sample.labels, "value": sample.value, "type": family.type}))
except Exception as error:  # the parser raises ValueError and friends on a malformed line
    sys.stderr.write(f"not Prometheus text format: {error}\n")
    sys.exit(1)
