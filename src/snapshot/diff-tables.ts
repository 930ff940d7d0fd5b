import type {NodeEntry, Row, TableTree} from './model.js'
import {rowKey, rowsEqual, tileXY} from './rows.js'
import {type BBox, overlapsLabel, type TreeReader} from './tree-reader.js'

export interface RowChange {
  key: string
  old: Row | null
  new: Row | null
}

function sameShape(a: TableTree, b: TableTree): boolean {
  return JSON.stringify([a.columns, a.key, a.partition, a.keyKind]) === JSON.stringify([b.columns, b.key, b.partition, b.keyKind])
}

function inBox(row: Row, table: TableTree, bbox?: BBox): boolean {
  if (!bbox) return true
  const xy = tileXY(row, table.partition)
  return xy !== null && xy[0] >= bbox[0] && xy[0] <= bbox[2] && xy[1] >= bbox[1] && xy[1] <= bbox[3]
}

/**
 * Row changes from `a` to `b`. Subtrees with equal ids are skipped without being read, so
 * the cost follows the number of changed leaves, not the size of the table.
 */
export async function diffTables(a: TableTree | null, b: TableTree | null, reader: TreeReader, bbox?: BBox): Promise<RowChange[]> {
  const changes: RowChange[] = []
  if (a && b && !sameShape(a, b)) {
    // The table's layout changed (a migration): compare every row by key.
    const before = new Map<string, Row>()
    for await (const r of reader.rows(a, bbox)) if (inBox(r, a, bbox)) before.set(rowKey(r, a.key), r)
    for await (const r of reader.rows(b, bbox)) {
      if (!inBox(r, b, bbox)) continue
      const k = rowKey(r, b.key)
      const old = before.get(k) ?? null
      before.delete(k)
      if (!old || !rowsEqual(old, r) || JSON.stringify(a.columns) !== JSON.stringify(b.columns)) changes.push({key: k, old, new: r})
    }
    for (const [k, r] of before) changes.push({key: k, old: r, new: null})
    return changes
  }
  const shape = (a ?? b)!
  const keyOf = (r: Row): string => rowKey(r, shape.key)

  const diffLeaves = async (la: string | null, lb: string | null): Promise<void> => {
    const ra = la ? await reader.leafRows(la) : []
    const rb = lb ? await reader.leafRows(lb) : []
    const map = new Map<string, Row>()
    for (const r of ra) if (inBox(r, shape, bbox)) map.set(keyOf(r), r)
    for (const r of rb) {
      if (!inBox(r, shape, bbox)) continue
      const k = keyOf(r)
      const old = map.get(k)
      if (old) {
        map.delete(k)
        if (!rowsEqual(old, r)) changes.push({key: k, old, new: r})
      } else changes.push({key: k, old: null, new: r})
    }
    for (const [k, r] of map) changes.push({key: k, old: r, new: null})
  }

  const diffInner = async (ia: string | null, ib: string | null, level: 1 | 2): Promise<void> => {
    const ea = new Map<string, NodeEntry>((await reader.innerEntries(ia)).map((e) => [e.label, e]))
    const eb = new Map<string, NodeEntry>((await reader.innerEntries(ib)).map((e) => [e.label, e]))
    const labels = [...new Set([...ea.keys(), ...eb.keys()])].sort()
    const differing: Array<[string | null, string | null]> = []
    for (const label of labels) {
      const x = ea.get(label)?.id ?? null
      const y = eb.get(label)?.id ?? null
      if (x === y) continue
      if (bbox && !overlapsLabel(label, level, bbox)) continue
      differing.push([x, y])
    }
    // Read every differing child at once (the reads overlap), then compare in order.
    await Promise.all(differing.flat().filter((id): id is string => id !== null).map((id) => reader.node(id)))
    for (const [x, y] of differing) {
      if (level === 2) await diffInner(x, y, 1)
      else await diffLeaves(x, y)
    }
  }

  const ra = a?.root ?? null
  const rb = b?.root ?? null
  if (ra !== rb) await diffInner(ra, rb, 2)
  return changes
}
