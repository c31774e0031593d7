#!/usr/bin/env python3
"""Checks what a backend received against what the agent stored (test helper, not product).

    delivery_check.py --db DB [--expect-dropped N] SUBSCRIBER_LOG...

SUBSCRIBER_LOG files hold the lines of `pdmctl subscribe --json`. Checks:
  - every alert event the store ever committed (alerts are never evicted) was received;
  - a seq received more than once always carried the same content (duplicates are re-sends);
  - the seqs received (readings, scores, alerts) cover 1..max: a seq that never arrived must
    still be in the store undelivered, or be one of exactly --expect-dropped N readings the
    agent gave up by policy (default 0).
Prints a summary line; exits 1 with the reason on the first failed check.
"""
import argparse
import json
import sqlite3
import sys

SEQ_RESERVE_STEP = 1_000_000  # agent/store_int.h


def fail(msg):
    print("delivery_check: FAIL: " + msg)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--expect-dropped", type=int, default=0)
    ap.add_argument("logs", nargs="+")
    args = ap.parse_args()

    seen = {}  # seq -> content tuple
    alert_ids = set()
    dups = 0
    messages = 0

    def record(seq, content):
        nonlocal dups
        prev = seen.get(seq)
        if prev is None:
            seen[seq] = content
        elif prev != content:
            fail(f"seq {seq} arrived twice with different content: {prev} vs {content}")
        else:
            dups += 1

    for path in args.logs:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    m = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
                messages += 1
                t = m.get("type")
                if t == "alert":
                    alert_ids.add(m["alert_id"])
                    record(m["seq"], ("alert", m["alert_id"], m.get("state"), m.get("severity"),
                                      m.get("ts_ms")))
                elif t == "telemetry":
                    for s in m.get("series", []):
                        for ts, v, q in zip(s.get("ts_ms", []), s.get("value", []),
                                            s.get("seq", [])):
                            record(q, ("reading", s["sensor"], ts, v))
                    for sc in m.get("scores", []):
                        record(sc["seq"], ("score", sc["asset"], sc.get("ts_ms"),
                                           sc.get("probability")))

    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    stored = {r[0]: r[1] for r in db.execute("SELECT seq, alert_id FROM alerts")}
    missing = [q for q in stored if q not in seen or seen[q][0] != "alert"]
    if missing:
        fail(f"{len(missing)} stored alert events never reached the backend: seq {missing[:5]}")

    if not seen:
        fail("nothing received")
    top = max(seen)
    # A run killed before its first commit (the store still empty) handed out seqs that never
    # left memory; the next start cannot tell them from seqs a replaced database had sent, so
    # it continues above the reservation (agent/store.c, SEQ_RESERVE_STEP = 1,000,000 in
    # agent/store_int.h). Such a start leaves a leading gap of whole reservation steps, and
    # nothing else can: those seqs were never committed, so never published.
    low = min(seen)
    skipped = low - 1 if low > 1 and (low - 1) % SEQ_RESERVE_STEP == 0 else 0
    if skipped:
        print(f"delivery_check: seqs 1..{skipped} skipped at a start after runs killed before "
              f"their first commit")
    gaps = [q for q in range(skipped + 1, top + 1) if q not in seen]
    undelivered = {r[0] for r in db.execute("SELECT seq FROM rows WHERE delivered = 0")}
    unexplained = [q for q in gaps if q not in undelivered]
    print(f"delivery_check: {messages} messages, {len(seen)} distinct seqs up to {top}, "
          f"{dups} duplicates, {len(stored)} stored alert events "
          f"({len(set(stored.values()))} ids) all received, {len(gaps)} gaps "
          f"({len(gaps) - len(unexplained)} still undelivered in the store)")
    if len(unexplained) != args.expect_dropped:
        fail(f"{len(unexplained)} seqs never arrived and are not in the store, expected "
             f"{args.expect_dropped} dropped: {unexplained[:10]}")


if __name__ == "__main__":
    main()
