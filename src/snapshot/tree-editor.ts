import pLimit from 'p-limit'

import type {ObjectWriter} from '../store/object-store.js'
import {encodeNode, encodeTable, type NodeEntry, type Row, type TableTree} from './model.js'
import {compareStrings, leafLabel, midLabel, rowKey, type RowShape} from './rows.js'
import type {TreeReader} from './tree-reader.js'

export type TableShape = RowShape & Pick<TableTree, 'name' | 'keyKind'>

/**
 * Builds a table's tree, either from nothing (every row put) or as an edit of a base tree
 * (only changed rows put or deleted). Only touched leaves, their level-1 nodes and the
 * root are rewritten, so a commit's new tree objects grow with the change, not the table.
 */
export class TableTreeEditor {
  private readonly leaves = new Map<string, Map<string, Row>>()
  private baseMids: Map<string, NodeEntry> | undefined
  private readonly baseLeafEntries = new Map<string, Map<string, NodeEntry>>()

  constructor(
    private readonly shape: TableShape,
    private readonly base: TableTree | null,
    private readonly reader: TreeReader,
    private readonly writer: ObjectWriter,
    /**
     * Called when a tree built from nothing is given a second row with the same key: two rows
     * a snapshot could not tell apart, one of which would silently be lost.
     */
    private readonly onDuplicate?: (row: Row, other: Row) => never,
  ) {}

  async put(row: Row): Promise<void> {
    const key = rowKey(row, this.shape.key)
    const leaf = await this.leaf(leafLabel(row, this.shape, key))
    if (this.onDuplicate && !this.base) {
      const other = leaf.get(key)
      if (other) this.onDuplicate(row, other)
    }
    leaf.set(key, row)
  }

  /** Deletes by key; `row` is any row with the same key (the old row) so its leaf can be found. */
  async delete(row: Row): Promise<void> {
    const key = rowKey(row, this.shape.key)
    const leaf = await this.leaf(leafLabel(row, this.shape, key))
    leaf.delete(key)
  }

  /** Writes the touched nodes bottom-up (children before parents) and returns the table. */
  async finish(): Promise<{id: string; table: TableTree}> {
    const mids = await this.baseMidEntries()
    const touchedMids = new Map<string, Map<string, NodeEntry>>()
    // Nodes of one level are written a few at a time: each is a file write, and one after
    // another they were a third of a small commit's time.
    const limit = pLimit(16)
    const writes: Array<Promise<void>> = []
    for (const [label, rows] of [...this.leaves].sort((a, b) => compareStrings(a[0], b[0]))) {
      const m = midLabel(label)
      let entries = touchedMids.get(m)
      if (!entries) {
        entries = new Map(await this.baseLeafEntriesOf(m))
        touchedMids.set(m, entries)
      }
      if (rows.size === 0) {
        entries.delete(label)
        continue
      }
      const sorted = [...rows].sort((a, b) => compareStrings(a[0], b[0])).map(([, r]) => r)
      const leaf = entries
      writes.push(limit(() => this.writer.put(encodeNode({level: 0, rows: sorted}))).then((id) => {
        leaf.set(label, {label, id, rows: sorted.length})
      }))
    }
    await settleAll(writes.splice(0))
    for (const [m, entries] of touchedMids) {
      if (entries.size === 0) {
        mids.delete(m)
        continue
      }
      const list = [...entries.values()].sort((a, b) => compareStrings(a.label, b.label))
      writes.push(limit(() => this.writer.put(encodeNode({level: 1, entries: list}))).then((id) => {
        mids.set(m, {label: m, id, rows: list.reduce((s, e) => s + e.rows, 0)})
      }))
    }
    await settleAll(writes)
    const rootEntries = [...mids.values()].sort((a, b) => compareStrings(a.label, b.label))
    const root = rootEntries.length === 0 ? null : await this.writer.put(encodeNode({level: 2, entries: rootEntries}))
    const table: TableTree = {
      name: this.shape.name,
      columns: this.shape.columns,
      keyKind: this.shape.keyKind,
      key: this.shape.key,
      layers: this.shape.layers,
      partition: this.shape.partition,
      root,
      rowCount: rootEntries.reduce((s, e) => s + e.rows, 0),
    }
    return {id: await this.writer.put(encodeTable(table)), table}
  }

  private async leaf(label: string): Promise<Map<string, Row>> {
    let leaf = this.leaves.get(label)
    if (leaf) return leaf
    leaf = new Map()
    const entry = (await this.baseLeafEntriesOf(midLabel(label))).get(label)
    if (entry) for (const r of await this.reader.leafRows(entry.id)) leaf.set(rowKey(r, this.shape.key), r)
    this.leaves.set(label, leaf)
    return leaf
  }

  private async baseMidEntries(): Promise<Map<string, NodeEntry>> {
    if (!this.baseMids) {
      this.baseMids = new Map()
      if (this.base?.root) for (const e of await this.reader.innerEntries(this.base.root)) this.baseMids.set(e.label, e)
    }
    return new Map(this.baseMids)
  }

  private async baseLeafEntriesOf(mid: string): Promise<Map<string, NodeEntry>> {
    let entries = this.baseLeafEntries.get(mid)
    if (entries) return entries
    entries = new Map()
    if (!this.baseMids) await this.baseMidEntries()
    const m = this.baseMids!.get(mid)
    if (m) for (const e of await this.reader.innerEntries(m.id)) entries.set(e.label, e)
    this.baseLeafEntries.set(mid, entries)
    return entries
  }
}

/** Waits for every write, then throws the first failure: nothing is left running behind the caller. */
async function settleAll(writes: Array<Promise<void>>): Promise<void> {
  const failed = (await Promise.allSettled(writes)).find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
}
