/** Styles of the `tilesync serve` page (served as /app.css). */
export const APP_CSS = String.raw`
:root { --added: #1a9e3f; --modified: #f08c00; --deleted: #d7263d; --ink: #1d2330; --muted: #667085; --line: #d0d5dd; --bg: #f5f6f8; }
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
body { display: flex; flex-direction: column; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 16px; padding: 8px 14px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 17px; margin: 0 8px 0 0; letter-spacing: .02em; }
nav { display: flex; gap: 2px; }
nav button { border: 1px solid var(--line); background: #fff; padding: 5px 12px; cursor: pointer; font: inherit; }
nav button:first-child { border-radius: 6px 0 0 6px; }
nav button:last-child { border-radius: 0 6px 6px 0; }
nav button.active { background: var(--ink); color: #fff; border-color: var(--ink); }
label { color: var(--muted); }
select { font: inherit; max-width: 260px; padding: 3px 4px; }
.controls { display: flex; gap: 12px; align-items: center; }
.controls[hidden], [hidden] { display: none !important; }
#status { color: var(--muted); margin-left: auto; }
#status.error { color: var(--deleted); }
main { flex: 1; display: flex; min-height: 0; }
#mapview { position: relative; flex: 1; min-width: 0; background: #e9ecf1 linear-gradient(45deg, #e3e7ed 25%, transparent 25%, transparent 75%, #e3e7ed 75%) 0 0 / 24px 24px; }
#map { position: absolute; inset: 0; width: 100%; height: 100%; cursor: grab; touch-action: none; }
#map.dragging { cursor: grabbing; }
#zoom { position: absolute; right: 12px; top: 12px; display: flex; flex-direction: column; gap: 4px; }
#zoom button { width: 34px; height: 30px; border: 1px solid var(--line); border-radius: 6px; background: #fff; font: 16px/1 system-ui, sans-serif; cursor: pointer; }
#legend { position: absolute; left: 12px; bottom: 12px; background: rgba(255,255,255,.92); border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; display: flex; gap: 12px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; margin-right: 4px; border: 3px solid; }
.swatch.added { border-color: var(--added); } .swatch.modified { border-color: var(--modified); } .swatch.deleted { border-color: var(--deleted); background: rgba(215,38,61,.35); }
#historyview { flex: 1; overflow: auto; padding: 14px 18px; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
td.id { font-family: ui-monospace, Menlo, Consolas, monospace; }
.ref { display: inline-block; background: #eef4ff; color: #1849a9; border-radius: 10px; padding: 0 7px; font-size: 12px; margin-right: 4px; }
td button, .panel button { font: inherit; font-size: 12px; padding: 2px 8px; border: 1px solid var(--line); border-radius: 5px; background: #fff; cursor: pointer; margin-right: 4px; }
aside#panel { width: 380px; flex: none; overflow: auto; background: #fff; border-left: 1px solid var(--line); padding: 12px 14px; }
aside h2 { font-size: 16px; margin: 2px 0 8px; }
aside h3 { font-size: 13px; margin: 14px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.muted { color: var(--muted); }
ul#changes { list-style: none; margin: 0; padding: 0; }
ul#changes li { padding: 3px 6px; cursor: pointer; border-radius: 4px; }
ul#changes li:hover { background: var(--bg); }
.status { display: inline-block; min-width: 66px; font-size: 12px; font-weight: 600; }
.status.added { color: var(--added); } .status.modified { color: var(--modified); } .status.deleted { color: var(--deleted); }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; margin-bottom: 10px; }
figure { margin: 0; }
figure img, .thumbs img { width: 128px; height: 128px; image-rendering: pixelated; background: #eee; border: 1px solid var(--line); display: block; }
figcaption { font-size: 12px; color: var(--muted); word-break: break-all; }
.none { width: 128px; height: 128px; border: 1px dashed var(--line); display: flex; align-items: center; justify-content: center; color: var(--muted); font-size: 12px; }
ol#tile-history { list-style: none; margin: 0; padding: 0; }
ol#tile-history li { border-top: 1px solid var(--line); padding: 8px 0; }
.thumbs { display: flex; gap: 8px; margin-top: 6px; }
.thumbs figure img { width: 96px; height: 96px; }
.thumbs .none { width: 96px; height: 96px; }
a.download { font-size: 12px; white-space: nowrap; }
`
