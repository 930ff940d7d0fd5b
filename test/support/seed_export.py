"""Writes a generations database out exactly as the user's earlier export script
(shared/seeds/000: export_to_oxen) lays out its oxen dataset, for tests of `tilesync import`:

  OUT/renders/<x>_<y>_<md5-8>.png     each non-NULL render, x and y as Python's {:04d}
  OUT/quadrants/<x>_<y>_<md5-8>.png   each non-NULL generation
  OUT/generations.csv                 render,quadrant,x,y,hash_render,hash_quadrant (csv.DictWriter)
  OUT/README.md                       basic info

Usage: python3 seed_export.py DB OUT
"""
import csv
import hashlib
import sqlite3
import sys
from pathlib import Path


def compute_hash(blob):
    return hashlib.md5(blob).hexdigest()[:8]


db_path, out = Path(sys.argv[1]), Path(sys.argv[2])
(out / "renders").mkdir(parents=True, exist_ok=True)
(out / "quadrants").mkdir(parents=True, exist_ok=True)
conn = sqlite3.connect(db_path)
rows = conn.execute(
    "SELECT quadrant_x, quadrant_y, render, generation FROM quadrants"
    " WHERE render IS NOT NULL OR generation IS NOT NULL"
).fetchall()
new_csv_rows = []
for x, y, render_blob, gen_blob in rows:
    render_hash = compute_hash(render_blob) if render_blob else None
    gen_hash = compute_hash(gen_blob) if gen_blob else None
    if render_blob:
        (out / f"renders/{x:04d}_{y:04d}_{render_hash}.png").write_bytes(render_blob)
    if gen_blob:
        (out / f"quadrants/{x:04d}_{y:04d}_{gen_hash}.png").write_bytes(gen_blob)
    new_csv_rows.append({
        "x": x, "y": y,
        "render": f"renders/{x:04d}_{y:04d}_{render_hash}.png" if render_hash else "",
        "quadrant": f"quadrants/{x:04d}_{y:04d}_{gen_hash}.png" if gen_hash else "",
        "hash_render": render_hash or "",
        "hash_quadrant": gen_hash or "",
    })
conn.close()
with open(out / "generations.csv", "w", newline="") as fh:
    writer = csv.DictWriter(fh, fieldnames=["render", "quadrant", "x", "y", "hash_render", "hash_quadrant"])
    writer.writeheader()
    writer.writerows(new_csv_rows)
(out / "README.md").write_text(f"# Generations\n\n{len(new_csv_rows)} quadrants exported.\n")
