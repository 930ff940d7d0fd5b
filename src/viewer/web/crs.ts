import {IMAGE_PX} from './geometry.js'

/**
 * The map's coordinate system: Leaflet's L.CRS.Simple (flat, no projection), scaled so that
 * one map unit is one tile and zoom 0 shows a tile at 256 px, with y growing downward as the
 * database's tile rows do. A map point is (lat = y - origin y, lng = x - origin x).
 */
export const TILE_CRS: L.CRS = L.extend({}, L.CRS.Simple, {
  transformation: new L.Transformation(IMAGE_PX, 0, IMAGE_PX, 0),
})

export function tileLatLng(x: number, y: number, origin: readonly [number, number]): L.LatLng {
  return L.latLng(y - origin[1], x - origin[0])
}

/** The tile under a map point. */
export function tileOf(latlng: L.LatLng, origin: readonly [number, number]): [number, number] {
  return [Math.floor(latlng.lng) + origin[0], Math.floor(latlng.lat) + origin[1]]
}
