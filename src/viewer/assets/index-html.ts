/** The one page of `tilesync serve`; everything else is loaded from /api/. */
export const INDEX_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tilesync</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body data-map-state="loading">
<header>
  <h1>tilesync</h1>
  <nav>
    <button id="tab-map" data-view="map">Map</button>
    <button id="tab-diff" data-view="diff">Diff</button>
    <button id="tab-history" data-view="history">History</button>
  </nav>
  <div class="controls" id="controls-map"><label>Revision <select id="rev"></select></label></div>
  <div class="controls" id="controls-diff" hidden>
    <label>From <select id="from"></select></label>
    <label>To <select id="to"></select></label>
  </div>
  <div class="controls" id="controls-layer"><label>Layer <select id="layer"></select></label></div>
  <span id="status"></span>
</header>
<main>
  <section id="mapview">
    <canvas id="map" aria-label="tile map"></canvas>
    <div id="zoom">
      <button id="zoom-in" title="zoom in">+</button>
      <button id="zoom-out" title="zoom out">&minus;</button>
      <button id="zoom-fit" title="fit the map">&#x2922;</button>
    </div>
    <div id="legend" hidden>
      <span><span class="swatch added"></span>added</span>
      <span><span class="swatch modified"></span>modified</span>
      <span><span class="swatch deleted"></span>deleted</span>
    </div>
  </section>
  <section id="historyview" hidden>
    <table id="commits">
      <thead><tr><th>commit</th><th>message</th><th>author</th><th>date</th><th>tiles</th><th></th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <aside id="panel" class="panel"></aside>
</main>
</body>
</html>
`
