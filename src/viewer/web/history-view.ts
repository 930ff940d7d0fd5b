import {el, short} from './dom.js'
import type {CommitView} from './protocol.js'

/** The commit table: message, author, date, tiles changed; open a commit as a map or compare it with its parent. */
export function renderHistory(body: HTMLElement, commits: CommitView[], open: {map(id: string): void; compare(from: string, to: string): void}): void {
  body.textContent = ''
  for (const c of commits) {
    const refs = el('span', {}, c.refs.map((r) => el('span', {class: 'ref', text: r})))
    body.appendChild(el('tr', {'data-commit': c.id}, [
      el('td', {class: 'id', text: short(c.id)}),
      el('td', {}, [refs, c.message]),
      el('td', {text: c.author}),
      el('td', {text: c.date.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}),
      el('td', {text: String(c.tilesChanged)}),
      el('td', {}, [
        el('button', {text: 'map', onclick: () => open.map(c.id)}),
        c.parents.length ? el('button', {text: 'compare', onclick: () => open.compare(c.parents[0], c.id)}) : null,
      ]),
    ]))
  }
}
