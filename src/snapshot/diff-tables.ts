import {type LayoutCompareOptions, LayoutPair} from './layout-compare.js'
import type {NodeEntry, Row, TableTree} from './model.js'
import {rowKey, rowsEqual, tileXY} from './rows.js'
import {type BBox, overlapsLabel, type TreeReader} from './tree-reader.js'

export interface RowChange {
  key: string
  old: Row | null
  new: Row | null
}

const keyNames = (t: TableTree): string[] => t.key.map((i) => t.columns[i].name)
const partitionNames = (t: TableTree): string[] => (t.partition.kind === 'spatial' ? [t.columns[t.partition.x].name, t.columns[t.partition.y].name] : [])

/** Rows of both tables land in leaves with the same labels, so equal subtrees can be skipped. */
function sameLeaves(a: TableTree, b: TableTree): boolean {
  return a.keyKind === b.keyKind && a.partition.kind === b.partition.kind &&
    JSON.stringify([keyNames(a), partitionNames(a)]) === JSON.stringify([keyNames(b), partitionNames(b)])
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
export async function diffTables(a: TableTree | null, b: TableTree | null, reader: TreeReader, bbox?: BBox, compare: LayoutCompareOptions = {}): Promise<RowChange[]> {
  const changes: RowChange[] = []
  // Rows of different layouts (a column added, dropped, reordered, or left out of
  // versioning) are compared column by column by name; otherwise cell by cell.
  const pair = a && b ? new LayoutPair(a, b, compare) : null
  const same = pair && !pair.positional ? (x: Row, y: Row) => pair.equal(x, y) : rowsEqual
  if (a && b && !sameLeaves(a, b)) {
    // The key or partition changed (a migration): compare every row by key.
    const before = new Map<string, Row>()
    for await (const r of reader.rows(a, bbox)) if (inBox(r, a, bbox)) before.set(rowKey(r, a.key), r)
    for await (const r of reader.rows(b, bbox)) {
      if (!inBox(r, b, bbox)) continue
      const k = rowKey(r, b.key)
      const old = before.get(k) ?? null
      before.delete(k)
      if (!old || !same(old, r)) changes.push({key: k, old, new: r})
    }
    for (const [k, r] of before) changes.push({key: k, old: r, new: null})
    return changes
  }
  const ta = (a ?? b)!
  const tb = (b ?? a)!

  const diffLeaves = async (la: string | null, lb: string | null): Promise<void> => {
    const ra = la ? await reader.leafRows(la) : []
    const rb = lb ? await reader.leafRows(lb) : []
    const map = new Map<string, Row>()
    for (const r of ra) if (inBox(r, ta, bbox)) map.set(rowKey(r, ta.key), r)
    for (const r of rb) {
      if (!inBox(r, tb, bbox)) continue
      const k = rowKey(r, tb.key)
      const old = map.get(k)
      if (old) {
        map.delete(k)
        if (!same(old, r)) changes.push({key: k, old, new: r})
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
