"""The pipeline's queue worker, as far as the database sees it: plain sqlite3.connect (rollback
journal, 5 s busy timeout, no PRAGMAs), one short transaction per change to generation_queue.

Usage: python3 queue_writer.py DB STOP_FILE

Every write stamps result_message with "w<n>" (n = 1, 2, 3, ... in the order the writes were
committed), so a test can tell each of this process's writes from any other writer's. Runs
until STOP_FILE exists, then prints one JSON line: the number of writes and the final rows.
"""
import json
import os
import sqlite3
import sys
import time

db_path, stop_file = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db_path)
ids = [r[0] for r in conn.execute("SELECT id FROM generation_queue ORDER BY id")]
n = 0
started = time.time()
times = []
while not os.path.exists(stop_file):
    n += 1
    if n % 4 == 0:
        cur = conn.execute(
            "INSERT INTO generation_queue (item_type, quadrants, model_id, status, created_at, result_message)"
            " VALUES ('generation', ?, 'omni-v1', 'pending', ?, ?)",
            (json.dumps([[n % 7 - 3, n % 5 - 2]]), time.time(), "w%d" % n),
        )
        ids.append(cur.lastrowid)
    else:
        item = ids[n % len(ids)]
        status = ("running", "done", "error")[n % 3]
        conn.execute(
            "UPDATE generation_queue SET status = ?, started_at = coalesce(started_at, ?), completed_at = ?, result_message = ? WHERE id = ?",
            (status, time.time(), time.time() if status != "running" else None, "w%d" % n, item),
        )
    conn.commit()
    times.append(time.time())
    time.sleep(0.003)
    if time.time() - started > 120:
        break
rows = conn.execute("SELECT id, item_type, quadrants, model_id, status, created_at, started_at, completed_at, result_message FROM generation_queue ORDER BY id").fetchall()
conn.close()
print(json.dumps({"writes": n, "times": times, "rows": rows}))
