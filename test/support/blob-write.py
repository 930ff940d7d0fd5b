"""Writes bytes into an existing BLOB cell through SQLite's incremental blob I/O, as a
pipeline using Python's Connection.blobopen does: no UPDATE statement, so no trigger fires.

usage: blob-write.py DB TABLE COLUMN ROWID HEX [journal_mode]"""
import sqlite3
import sys

db, table, column, rowid, data = sys.argv[1:6]
con = sqlite3.connect(db)
if len(sys.argv) > 6:
    con.execute(f"PRAGMA journal_mode = {sys.argv[6]}")
with con.blobopen(table, column, int(rowid)) as blob:
    blob.write(bytes.fromhex(data))
con.commit()
con.close()
