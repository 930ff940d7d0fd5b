import type {TileChange} from './protocol.js'

/**
 * How a changed tile is outlined, by kind. A change's `kind` wins over its `status` when the
 * server sends one; a kind this page does not know is drawn in a neutral dashed style and
 * named in the legend, so a new kind needs no change here to show.
 */
export interface KindStyle {
  colour: string
  dashed: boolean
  label: string
}

export const KIND_STYLES: Record<string, KindStyle> = {
  added: {colour: '#1a9e3f', dashed: false, label: 'added'},
  modified: {colour: '#f08c00', dashed: false, label: 'modified'},
  deleted: {colour: '#d7263d', dashed: false, label: 'deleted'},
  // Modified tiles told apart by their pixels (`/api/perceptual`), once the server has looked.
  're-encoded': {colour: '#1c7ed6', dashed: true, label: 're-encoded (pixels identical)'},
  'nearly-identical': {colour: '#e0a800', dashed: true, label: 'nearly identical'},
}

/** The kind a modified tile takes from its perceptual verdict; null keeps it "modified". */
export function kindOfVerdict(verdict: string): string | null {
  return verdict === 'pixels-identical' ? 're-encoded' : verdict === 'nearly-identical' ? 'nearly-identical' : null
}

const OTHER: Omit<KindStyle, 'label'> = {colour: '#6941c6', dashed: true}

export function kindOf(change: TileChange): string {
  return change.kind ?? change.status
}

export function styleOf(kind: string): KindStyle {
  return KIND_STYLES[kind] ?? {...OTHER, label: kind}
}
