"""Prints what scripts/api-fuzz/hooks.py counted: statuses, and how many requests to secured
operations carried a real credential and were accepted with it.

    python summary.py STATS.json [MIN_SHARE]

Exits 1 when the share of requests to secured operations that carried a real credential and
were not answered 401 is below MIN_SHARE (a fraction, default 0: report only).
"""

import json
import sys


def main() -> int:
    stats = json.load(open(sys.argv[1]))
    minimum = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    total = stats["requests"]
    print(f"api-fuzz: {total} requests (generated cases; schemathesis' own auth probes not counted)")
    print("  by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(stats["by_status"].items())))
    print("  by operation:")
    for label, statuses in sorted(stats["by_operation"].items()):
        parts = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
        print(f"    {label:<48} {parts}")
    secured = stats["secured_requests"]
    real = stats["secured_with_real_credential"]
    accepted = stats["secured_real_accepted"]
    share = accepted / secured if secured else 0.0
    print(
        f"  secured operations: {secured} requests, {real} with a real credential, "
        f"{accepted} of them not refused 401 ({share:.1%} of all secured requests really authenticated)"
    )
    for kind, counts in sorted(stats["by_kind"].items()):
        print(f"    {kind:<25} sent {counts.get('sent', 0)}, refused 401 {counts.get('401', 0)}")
    if stats.get("admin_refused_not_operator"):
        print(f"  admin operations refused 403 AUTH_1005 to a user who is no operator (counted as authenticated): {stats['admin_refused_not_operator']}")
    if stats["secured_real_401"]:
        print("  401s to a real credential: " + ", ".join(f"{k}: {n}" for k, n in sorted(stats["secured_real_401"].items())))
    if stats.get("placeholders_sent"):
        print(f"  WARNING: {stats['placeholders_sent']} requests went out with a placeholder credential (hooks.py did not replace it)")
    dropped = stats.get("dropped_failures") or {}
    if dropped:
        print("  failures dropped by hooks.py's filter_failure (not Tessera's; see there): "
              + ", ".join(f"{k}: {n}" for k, n in sorted(dropped.items())))
    replaced = stats["readers_replaced"]
    print("  long-lived credentials replaced after dying: " + (", ".join(f"{k}: {n}" for k, n in replaced.items()) or "none"))
    if share < minimum:
        print(f"api-fuzz: only {share:.1%} of the requests to secured operations were authenticated (at least {minimum:.0%} expected)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
