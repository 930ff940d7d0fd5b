import {TilesyncError} from '../../core/errors.js'

/** The public hub; any other host (a self-hosted oxen-server) can be given instead. */
export const DEFAULT_OXEN_HOST = 'hub.oxen.ai'

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

export interface OxenOrigin {
  /** Scheme + host + port, no trailing slash: where requests go. */
  origin: string
  /** host[:port], as matched against auth_config.toml and shown in messages. */
  host: string
}

/**
 * Accepts a bare host ("hub.oxen.ai", "127.0.0.1:3000") or an origin URL. Bare local hosts
 * use http (as the official CLI does), everything else https; plain http to a non-local host
 * is refused, since the bearer token would cross the network in clear.
 */
export function resolveOxenOrigin(hostOrUrl: string = DEFAULT_OXEN_HOST): OxenOrigin {
  const raw = hostOrUrl.trim()
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw)
  let url: URL
  try {
    url = new URL(hasScheme ? raw : `https://${raw}`)
  } catch {
    throw bad(raw, 'not a host name or URL')
  }
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    throw bad(raw, 'give only the host (and port), without a path, query or credentials')
  }
  const local = LOCAL_HOSTS.has(url.hostname)
  let scheme = url.protocol.replace(/:$/, '')
  if (!hasScheme && local) scheme = 'http'
  if (scheme !== 'https' && scheme !== 'http') throw bad(raw, `unsupported scheme ${scheme}`)
  if (scheme === 'http' && !local) throw bad(raw, 'plain http is allowed only for localhost and 127.0.0.1')
  return {origin: `${scheme}://${url.host}`, host: url.host}
}

function bad(value: string, why: string): TilesyncError {
  return new TilesyncError('BAD_ARGUMENT', `cannot use "${value}" as an oxen host: ${why}`, {hint: `use a host such as ${DEFAULT_OXEN_HOST} or 127.0.0.1:3000`})
}
