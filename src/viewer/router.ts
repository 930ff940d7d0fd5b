import type * as http from 'node:http'

/** What a route's handler gets: the exchange, the parsed URL, and the pattern's captures. */
export interface RouteContext {
  req: http.IncomingMessage
  res: http.ServerResponse
  url: URL
  query: URLSearchParams
  params: string[]
}

export type RouteHandler = (ctx: RouteContext) => Promise<void> | void

interface Route {
  method: string
  pattern: string | RegExp
  handler: RouteHandler
}

export type RouteMatch = {kind: 'found'; handler: RouteHandler; params: string[]} | {kind: 'wrong-method'; allow: string[]} | {kind: 'none'}

/**
 * The server's routes: exact paths or anchored patterns over the pathname as sent (not percent-decoded), each
 * for one method. New routes (an API behind a token, say) are added with `add` next to the
 * viewer's own; nothing maps a path to a file.
 */
export class Router {
  private readonly routes: Route[] = []

  add(method: string, pattern: string | RegExp, handler: RouteHandler): this {
    if (pattern instanceof RegExp && (!pattern.source.startsWith('^') || !pattern.source.endsWith('$'))) {
      throw new Error(`route pattern ${pattern} must be anchored with ^ and $`)
    }
    this.routes.push({method, pattern, handler})
    return this
  }

  get(pattern: string | RegExp, handler: RouteHandler): this {
    return this.add('GET', pattern, handler)
  }

  /** Every method some route answers. */
  methods(): string[] {
    return [...new Set(this.routes.map((r) => r.method))]
  }

  match(method: string, pathname: string): RouteMatch {
    const allow = new Set<string>()
    for (const route of this.routes) {
      let params: string[] | null = null
      if (typeof route.pattern === 'string') params = route.pattern === pathname ? [] : null
      else {
        const m = route.pattern.exec(pathname)
        params = m ? m.slice(1) : null
      }
      if (!params) continue
      if (route.method === method) return {kind: 'found', handler: route.handler, params}
      allow.add(route.method)
    }
    return allow.size ? {kind: 'wrong-method', allow: [...allow]} : {kind: 'none'}
  }
}
