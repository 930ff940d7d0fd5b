import {Packr} from 'msgpackr'

/**
 * One msgpack configuration for every stored object. Objects are positional arrays of
 * strings, numbers, bigints and byte buffers only (no maps, no records, no extensions),
 * which msgpack encodes in exactly one way: the same snapshot always yields the same bytes
 * and therefore the same id.
 */
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  bundleStrings: false,
  int64AsType: 'bigint',
  largeBigIntToFloat: false,
  mapsAsObjects: false,
  variableMapSize: false,
})

export function encode(value: unknown): Buffer {
  return packr.pack(value)
}

export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes)
}
