"""The generation pipeline as the database sees it: Python's sqlite3 with a short busy timeout,
writing two tiles in one transaction at a steady pace.

Usage: python3 pair_writer.py DB STOP_FILE [TIMEOUT_S] [INTERVAL_S]
       python3 pair_writer.py DB --hold SECONDS

Each write sets the notes of tiles (0, 0) and (1, 0) to the same "p<n>" and gives (0, 0) a
new render, in one transaction: a snapshot holds both old or both new. A write that fails
(`database is locked`) is counted, never retried. Runs until STOP_FILE exists, then prints one
JSON line: writes, failures, the worst time one write took (seconds) and the error messages.

With --hold it opens a write transaction on the pair, prints "ready", keeps it open SECONDS
and commits: a pipeline in the middle of a long write.
"""
import json
import os
import sqlite3
import sys
import time

db_path = sys.argv[1]

if sys.argv[2] == "--hold":
    conn = sqlite3.connect(db_path, timeout=5.0, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE quadrants SET notes = 'held' WHERE quadrant_x IN (0, 1) AND quadrant_y = 0")
    print("ready", flush=True)
    time.sleep(float(sys.argv[3]))
    conn.execute("COMMIT")
    conn.close()
    print(json.dumps({"held": float(sys.argv[3])}), flush=True)
    sys.exit(0)

stop_file = sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.02
conn = sqlite3.connect(db_path, timeout=timeout)
n = 0
failures = 0
worst = 0.0
errors = []
started = time.time()
print("ready", flush=True)
while not os.path.exists(stop_file) and time.time() - started < 300:
    n += 1
    t0 = time.time()
    try:
        conn.execute("UPDATE quadrants SET notes = ?, render = randomblob(4096) WHERE quadrant_x = 0 AND quadrant_y = 0", ("p%d" % n,))
        conn.execute("UPDATE quadrants SET notes = ? WHERE quadrant_x = 1 AND quadrant_y = 0", ("p%d" % n,))
        conn.commit()
    except sqlite3.OperationalError as e:
        failures += 1
        errors.append(str(e))
        try:
            conn.rollback()
        except sqlite3.Error:
            pass
    worst = max(worst, time.time() - t0)
    time.sleep(interval)
conn.close()
print(json.dumps({"writes": n, "failures": failures, "worst": worst, "errors": errors[:5]}), flush=True)
