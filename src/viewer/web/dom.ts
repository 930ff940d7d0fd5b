/** Small DOM helpers for the viewer's page. */

type Child = Node | string | null | undefined | false

/** An element with attributes (`text` sets its text, `onclick` a click handler) and children. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | number | boolean | null | undefined | ((e: MouseEvent) => void)> = {}, children: Child[] = []): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue
    if (k === 'text') e.textContent = String(v)
    else if (k === 'onclick' && typeof v === 'function') e.addEventListener('click', (ev) => v(ev as MouseEvent))
    else e.setAttribute(k, String(v))
  }
  for (const c of children) if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c)
  return e
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id)
  if (!e) throw new Error(`the page has no #${id}`)
  return e as T
}

export function short(id: string | null | undefined): string {
  if (id === 'working') return 'working'
  return (id ?? '').slice(0, 10)
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1048576).toFixed(1)} MiB`
}

/** A query string from the parameters that are set. */
export function query(params: Record<string, string | number | null | undefined>): string {
  const parts: string[] = []
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
  return parts.join('&')
}
