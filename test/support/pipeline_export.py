"""Writes a generations database out in the layout the generation pipeline's own export script
produces (its oxen dataset), for tests of `tilesync import`:

  OUT/generations/<x>_<y>_<md5-8>.png   every non-NULL generation, x and y as Python's {:04d}
  OUT/generations.csv                   x,y,quadrant,hash_quadrant, built from the files on disk
  OUT/generation_config.json            copied from beside the database, when there
  OUT/bounds.json                       likewise

Usage: python3 pipeline_export.py DB OUT
"""
import csv
import hashlib
import shutil
import sqlite3
import sys
from pathlib import Path

db_path, out = Path(sys.argv[1]), Path(sys.argv[2])
images = out / "generations"
images.mkdir(parents=True, exist_ok=True)
for name in ("generation_config.json", "bounds.json"):
    if (db_path.parent / name).exists():
        shutil.copy2(db_path.parent / name, out / name)
conn = sqlite3.connect(db_path)
for x, y, blob in conn.execute("SELECT quadrant_x, quadrant_y, generation FROM quadrants WHERE generation IS NOT NULL"):
    digest = hashlib.md5(blob).hexdigest()[:8]
    for old in images.glob(f"{x:04d}_{y:04d}_*.png"):
        old.unlink()
    (images / f"{x:04d}_{y:04d}_{digest}.png").write_bytes(blob)
conn.close()
rows = []
for f in sorted(images.glob("*.png")):
    x, y, digest = f.stem.split("_")
    rows.append({"x": int(x), "y": int(y), "quadrant": f"generations/{f.name}", "hash_quadrant": digest})
with open(out / "generations.csv", "w", newline="") as fh:
    writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()) if rows else ["x", "y", "render", "quadrant", "hash_render", "hash_quadrant"])
    writer.writeheader()
    writer.writerows(rows)
