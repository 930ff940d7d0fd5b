/**
 * The browser side of `tilesync serve` (served as /app.js): plain JavaScript, no build step.
 * The map is a canvas: one sprite image per 16x16 region when zoomed out, single tiles at
 * 256 px when zoomed in. `window.tilesync` exposes where tiles are drawn, for tests and for
 * anyone scripting the page.
 */
export const APP_JS = String.raw`
(function () {
  'use strict';
  var COLORS = {added: '#1a9e3f', modified: '#f08c00', deleted: '#d7263d'};
  var LOADING = '#d9d9d9';
  var EMPTY = '#b4b4b4';
  var HIRES_SCALE = 96;

  var state = {
    view: 'map', rev: 'HEAD', layer: null, from: null, to: 'working',
    map: null, tiles: null, diff: null, changed: null,
    scale: 8, px: 0, py: 0, fitted: false, selected: null, refs: null, commits: []
  };
  var sprites = {};
  var hires = {};
  var regionIds = {};
  var loadSeq = 0;

  var canvas = document.getElementById('map');
  var ctx = canvas.getContext('2d');
  var panel = document.getElementById('panel');
  var statusEl = document.getElementById('status');

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (attrs[k] === null || attrs[k] === undefined) continue;
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'onclick') e.addEventListener('click', attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function short(id) { return id === 'working' ? 'working' : (id || '').slice(0, 10); }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }
  function setStatus(text, error) { statusEl.textContent = text || ''; statusEl.className = error ? 'error' : ''; }
  function api(path) {
    return fetch(path).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.error || r.statusText);
        return body;
      });
    });
  }
  function q(params) {
    var parts = [];
    for (var k in params) if (params[k] !== null && params[k] !== undefined) parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(params[k]));
    return parts.join('&');
  }

  // ---- location <-> state ----
  function readLocation() {
    var p = new URLSearchParams(location.search);
    state.view = ['map', 'diff', 'history'].indexOf(p.get('view')) >= 0 ? p.get('view') : 'map';
    state.rev = p.get('rev') || 'HEAD';
    state.layer = p.get('layer');
    state.from = p.get('from');
    state.to = p.get('to') || 'working';
  }
  function writeLocation() {
    var params = {view: state.view, layer: state.layer};
    if (state.view === 'diff') { params.from = state.from; params.to = state.to; } else params.rev = state.rev;
    history.replaceState(null, '', '?' + q(params));
  }

  // ---- revision selects ----
  function fillSelect(select, value, includeWorking) {
    select.textContent = '';
    var seen = {};
    function add(v, label) {
      if (seen[v]) return;
      seen[v] = true;
      select.appendChild(el('option', {value: v, text: label}));
    }
    if (includeWorking) add('working', 'working database');
    add('HEAD', 'HEAD' + (state.refs && state.refs.branch ? ' (' + state.refs.branch + ')' : ''));
    if (state.refs) {
      state.refs.branches.forEach(function (b) { add(b.name, 'branch ' + b.name); });
      state.refs.tags.forEach(function (t) { add(t.name, 'tag ' + t.name); });
    }
    state.commits.forEach(function (c) { add(c.id, short(c.id) + ' ' + c.message.split('\n')[0].slice(0, 40)); });
    if (value && !seen[value]) add(value, value);
    select.value = value;
  }
  function fillSelects() {
    fillSelect(document.getElementById('rev'), state.rev, true);
    fillSelect(document.getElementById('from'), state.from, false);
    fillSelect(document.getElementById('to'), state.to, true);
  }
  function fillLayers() {
    var select = document.getElementById('layer');
    select.textContent = '';
    var layers = state.map ? state.map.layers : [];
    if (layers.indexOf(state.layer) < 0) state.layer = layers.length ? layers[layers.length - 1] : null;
    layers.forEach(function (l) { select.appendChild(el('option', {value: l, text: l})); });
    if (state.layer) select.value = state.layer;
  }

  // ---- views ----
  function showView(view) {
    state.view = view;
    ['map', 'diff', 'history'].forEach(function (v) {
      document.getElementById('tab-' + v).classList.toggle('active', v === view);
    });
    document.getElementById('controls-map').hidden = view !== 'map';
    document.getElementById('controls-diff').hidden = view !== 'diff';
    document.getElementById('controls-layer').hidden = view === 'history';
    document.getElementById('mapview').hidden = view === 'history';
    document.getElementById('historyview').hidden = view !== 'history';
    document.getElementById('legend').hidden = view !== 'diff';
    writeLocation();
    if (view === 'history') return loadHistory();
    if (view === 'diff' && !state.from) state.from = state.refs && state.refs.head ? 'HEAD' : null;
    return loadMap();
  }

  function loadHistory() {
    var body = document.querySelector('#commits tbody');
    body.textContent = '';
    panel.textContent = '';
    panel.appendChild(el('h2', {text: 'History'}));
    panel.appendChild(el('p', {class: 'muted', text: 'Every commit, newest first. Open a commit as a map, or see what it changed.'}));
    state.commits.forEach(function (c) {
      var refs = el('span', {}, c.refs.map(function (r) { return el('span', {class: 'ref', text: r}); }));
      body.appendChild(el('tr', {'data-commit': c.id}, [
        el('td', {class: 'id', text: short(c.id)}),
        el('td', {}, [refs, c.message]),
        el('td', {text: c.author}),
        el('td', {text: c.date.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}),
        el('td', {text: String(c.tilesChanged)}),
        el('td', {}, [
          el('button', {text: 'map', onclick: function () { state.rev = c.id; fillSelects(); showView('map'); }}),
          c.parents.length ? el('button', {text: 'diff', onclick: function () { state.from = c.parents[0]; state.to = c.id; fillSelects(); showView('diff'); }}) : null
        ])
      ]));
    });
    document.body.dataset.historyState = 'ready';
  }

  function loadMap() {
    var seq = ++loadSeq;
    var diffMode = state.view === 'diff';
    var rev = diffMode ? state.to : state.rev;
    document.body.dataset.mapState = 'loading';
    delete document.body.dataset.diffState;
    state.diff = null;
    state.changed = null;
    regionIds = {};
    setStatus('loading ' + short(rev) + '…');
    var jobs = [api('/api/map?' + q({rev: rev}))];
    if (diffMode) {
      if (!state.from) { setStatus('no commits to compare', true); return Promise.resolve(); }
      jobs.push(api('/api/diff?' + q({from: state.from, to: state.to})));
    }
    return Promise.all(jobs).then(function (res) {
      if (seq !== loadSeq) return;
      state.map = res[0];
      state.tiles = {};
      state.map.regions.forEach(function (r) { r.tiles.forEach(function (t) { state.tiles[t[0] + ',' + t[1]] = t[2]; }); });
      if (diffMode) {
        state.diff = res[1];
        state.changed = {};
        state.diff.changes.tiles.forEach(function (t) { if (t.x !== undefined) state.changed[t.x + ',' + t.y] = t; });
      }
      fillLayers();
      writeLocation();
      if (!state.fitted) fit();
      loadSprites(seq);
      showSummary();
      if (state.selected) selectTile(state.selected[0], state.selected[1], false);
      draw();
    }).catch(function (e) { setStatus(e.message, true); document.body.dataset.mapState = 'error'; });
  }

  function layerIndex() { return state.map ? state.map.layers.indexOf(state.layer) : -1; }

  function loadSprites(seq) {
    var pending = 0;
    var started = performance.now();
    function done() {
      if (seq !== loadSeq) return;
      pending--;
      if (pending <= 0) finished();
      draw();
    }
    function finished() {
      var ms = Math.round(performance.now() - started);
      document.body.dataset.mapState = 'ready';
      document.body.dataset.mapRevision = state.map.revision;
      document.body.dataset.mapMs = String(ms);
      if (state.view === 'diff') document.body.dataset.diffState = 'ready';
      var text = state.map.count + ' tiles at ' + short(state.map.revision);
      if (state.diff) text = state.diff.changes.tiles.length + ' changed tile' + (state.diff.changes.tiles.length === 1 ? '' : 's') + ', ' + short(state.diff.from) + ' → ' + short(state.diff.to);
      setStatus(text);
    }
    state.map.regions.forEach(function (r) {
      var id = r.sprites[state.layer];
      if (!id) return;
      var s = sprites[id];
      if (s && s.done) return;
      pending++;
      if (s) { s.waiters.push(done); return; }
      s = sprites[id] = {img: new Image(), ok: false, done: false, waiters: [done]};
      s.img.onload = function () { s.ok = true; s.done = true; s.waiters.forEach(function (f) { f(); }); s.waiters = []; };
      s.img.onerror = function () { s.done = true; s.waiters.forEach(function (f) { f(); }); s.waiters = []; };
      s.img.src = '/api/sprite/' + id + '.webp';
    });
    if (pending === 0) finished();
  }

  // ---- drawing ----
  function size() {
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return {w: w, h: h};
  }

  function bounds() {
    var b = state.map && state.map.bounds ? state.map.bounds.slice() : null;
    if (state.changed) for (var k in state.changed) {
      var t = state.changed[k];
      b = b ? [Math.min(b[0], t.x), Math.min(b[1], t.y), Math.max(b[2], t.x), Math.max(b[3], t.y)] : [t.x, t.y, t.x, t.y];
    }
    return b;
  }

  function fit() {
    var b = bounds();
    var s = size();
    if (!b || !s.w) return;
    var cols = b[2] - b[0] + 1, rows = b[3] - b[1] + 1;
    state.scale = Math.max(0.5, Math.min(256, Math.min((s.w - 40) / cols, (s.h - 40) / rows)));
    state.px = (s.w - cols * state.scale) / 2 - b[0] * state.scale;
    state.py = (s.h - rows * state.scale) / 2 - b[1] * state.scale;
    state.fitted = true;
  }

  function frameWidth() { return Math.max(2, Math.min(6, Math.round(state.scale * 0.12))); }

  function cross(x, y, s) {
    ctx.beginPath();
    ctx.moveTo(x, y); ctx.lineTo(x + s, y + s);
    ctx.moveTo(x + s, y); ctx.lineTo(x, y + s);
    ctx.stroke();
  }

  function draw() {
    var view = size();
    ctx.clearRect(0, 0, view.w, view.h);
    if (!state.map || state.view === 'history') return;
    var s = state.scale, px = state.px, py = state.py, L = layerIndex();
    var span = state.map.span;
    var vx0 = Math.floor(-px / s) - 1, vy0 = Math.floor(-py / s) - 1;
    var vx1 = Math.ceil((view.w - px) / s) + 1, vy1 = Math.ceil((view.h - py) / s) + 1;
    ctx.imageSmoothingEnabled = s < state.map.cell;
    ctx.lineWidth = 1;
    ctx.strokeStyle = '#8a8a8a';
    state.map.regions.forEach(function (r) {
      var rx0 = r.rx * span, ry0 = r.ry * span;
      if (rx0 > vx1 || rx0 + span < vx0 || ry0 > vy1 || ry0 + span < vy0) return;
      var sp = sprites[r.sprites[state.layer]];
      var ready = sp && sp.ok;
      r.tiles.forEach(function (t) {
        var has = L >= 0 && (t[2] & (1 << L));
        if (has && ready) return;
        ctx.fillStyle = has ? LOADING : EMPTY;
        ctx.fillRect(t[0] * s + px, t[1] * s + py, s, s);
        if (!has && s >= 8) cross(t[0] * s + px + 2, t[1] * s + py + 2, s - 4);
      });
      if (ready) ctx.drawImage(sp.img, rx0 * s + px, ry0 * s + py, span * s, span * s);
    });
    if (s >= HIRES_SCALE) drawHires(vx0, vy0, vx1, vy1);
    if (state.changed) drawDiff(vx0, vy0, vx1, vy1);
    if (state.selected) {
      ctx.lineWidth = 2;
      ctx.strokeStyle = '#2563eb';
      ctx.setLineDash([5, 3]);
      ctx.strokeRect(state.selected[0] * s + px - 2, state.selected[1] * s + py - 2, s + 4, s + 4);
      ctx.setLineDash([]);
    }
  }

  function drawDiff(vx0, vy0, vx1, vy1) {
    var s = state.scale, px = state.px, py = state.py;
    // Unchanged tiles are washed out so that only changes keep strong colours.
    ctx.fillStyle = 'rgba(255,255,255,0.55)';
    for (var key in state.tiles) {
      if (state.changed[key]) continue;
      var xy = key.split(',');
      var x = +xy[0], y = +xy[1];
      if (x < vx0 || x > vx1 || y < vy0 || y > vy1) continue;
      ctx.fillRect(x * s + px, y * s + py, s, s);
    }
    var lw = frameWidth();
    for (var k in state.changed) {
      var t = state.changed[k];
      var sx = t.x * s + px, sy = t.y * s + py;
      if (t.status === 'deleted') {
        ctx.fillStyle = 'rgba(215,38,61,0.35)';
        ctx.fillRect(sx, sy, s, s);
        ctx.strokeStyle = COLORS.deleted;
        ctx.lineWidth = Math.max(1, lw / 2);
        if (s >= 8) cross(sx + lw, sy + lw, s - 2 * lw);
      }
      ctx.strokeStyle = COLORS[t.status];
      ctx.lineWidth = lw;
      ctx.strokeRect(sx + lw / 2, sy + lw / 2, s - lw, s - lw);
    }
  }

  function drawHires(vx0, vy0, vx1, vy1) {
    var span = state.map.span, s = state.scale;
    var rev = state.map.revision;
    for (var rx = Math.floor(vx0 / span); rx <= Math.floor(vx1 / span); rx++) {
      for (var ry = Math.floor(vy0 / span); ry <= Math.floor(vy1 / span); ry++) {
        var key = rev + ':' + rx + ',' + ry;
        var entry = regionIds[key];
        if (!entry) {
          entry = regionIds[key] = {tiles: null};
          (function (entry) {
            api('/api/tiles?' + q({rev: rev === 'working' ? 'working' : rev, bbox: [rx * span, ry * span, rx * span + span - 1, ry * span + span - 1].join(',')}))
              .then(function (res) { entry.tiles = res.tiles; draw(); })
              .catch(function () {});
          })(entry);
          continue;
        }
        if (!entry.tiles) continue;
        entry.tiles.forEach(function (t) {
          if (t[0] < vx0 || t[0] > vx1 || t[1] < vy0 || t[1] > vy1) return;
          var id = t[2][state.layer];
          if (!id) return;
          var h = hires[id];
          if (!h) {
            h = hires[id] = {img: new Image(), ok: false};
            h.img.onload = function () { h.ok = true; draw(); };
            h.img.src = '/api/thumb/256/' + id + '.webp';
            return;
          }
          if (h.ok) ctx.drawImage(h.img, t[0] * s + state.px, t[1] * s + state.py, s, s);
        });
      }
    }
  }

  // ---- side panel ----
  function showSummary() {
    panel.textContent = '';
    delete panel.dataset.state;
    if (state.view === 'diff' && state.diff) {
      var d = state.diff, sum = d.changes.summary;
      panel.appendChild(el('h2', {text: 'Diff ' + short(d.from) + ' → ' + short(d.to)}));
      panel.appendChild(el('p', {text: sum.tilesAdded + ' added, ' + sum.tilesModified + ' modified, ' + sum.tilesDeleted + ' deleted. Click a tile for before and after.'}));
      var list = el('ul', {id: 'changes'});
      d.changes.tiles.forEach(function (t) {
        if (t.x === undefined) return;
        list.appendChild(el('li', {'data-x': t.x, 'data-y': t.y, 'data-status': t.status, onclick: function () { centerOn(t.x, t.y); selectTile(t.x, t.y, true); }}, [
          el('span', {class: 'status ' + t.status, text: t.status}),
          'tile ' + t.x + ',' + t.y + ' ',
          el('span', {class: 'muted', text: t.layers.map(function (l) { return l.change && l.change !== 'modified' ? l.layer + ' ' + l.change : l.layer; }).join(', ')})
        ]));
      });
      panel.appendChild(list);
      return;
    }
    if (!state.map) return;
    panel.appendChild(el('h2', {text: (state.map.revision === 'working' ? 'Working database' : 'Revision ' + short(state.map.revision))}));
    panel.appendChild(el('p', {text: state.map.count + ' tiles; layers: ' + state.map.layers.join(', ') + '. Drag to pan, scroll to zoom, click a tile for its history.'}));
  }

  function imageFigure(ref, caption, name) {
    if (!ref) return el('figure', {}, [el('div', {class: 'none', text: 'NULL'}), el('figcaption', {text: caption})]);
    return el('figure', {'data-object': ref.id}, [
      el('img', {src: '/api/thumb/128/' + ref.id + '.webp', alt: caption + ' ' + ref.id, loading: 'lazy'}),
      el('figcaption', {}, [caption + ' ', el('span', {class: 'mono', text: short(ref.id)}), ' ' + bytes(ref.size) + ' ',
        el('a', {class: 'download', href: '/api/object/' + ref.id + '.png?' + q({download: name}), download: name, text: 'PNG'})])
    ]);
  }

  function selectTile(x, y, fetchHistory) {
    state.selected = [x, y];
    draw();
    if (fetchHistory === false && panel.dataset.tile === x + ',' + y) return;
    panel.textContent = '';
    panel.dataset.tile = x + ',' + y;
    panel.dataset.state = 'loading';
    var back = el('button', {text: '← back', onclick: function () { state.selected = null; draw(); showSummary(); }});
    panel.appendChild(back);
    panel.appendChild(el('h2', {text: 'Tile ' + x + ',' + y}));
    var change = state.changed && state.changed[x + ',' + y];
    if (change) {
      panel.appendChild(el('p', {}, [el('span', {class: 'status ' + change.status, text: change.status}), el('span', {class: 'mono', text: short(state.diff.from) + ' → ' + short(state.diff.to)})]));
      var box = el('div', {id: 'before-after'});
      change.layers.forEach(function (l) {
        box.appendChild(el('div', {class: 'mono', text: l.layer}));
        box.appendChild(el('div', {class: 'pair', 'data-layer': l.layer}, [
          imageFigure(l.old, 'before', 'tile_' + x + '_' + y + '_' + l.layer + '_' + short(state.diff.from) + '.png'),
          imageFigure(l.new, 'after', 'tile_' + x + '_' + y + '_' + l.layer + '_' + short(state.diff.to) + '.png')
        ]));
      });
      if (change.columns.length) box.appendChild(el('p', {class: 'muted', text: 'other columns changed: ' + change.columns.join(', ')}));
      panel.appendChild(box);
    }
    panel.appendChild(el('h3', {text: 'History of this tile'}));
    var list = el('ol', {id: 'tile-history'});
    panel.appendChild(list);
    var rev = state.view === 'diff' ? state.to : state.rev;
    api('/api/tile-history?' + q({rev: rev, x: x, y: y})).then(function (h) {
      if (panel.dataset.tile !== x + ',' + y) return;
      if (!h.versions.length) list.appendChild(el('li', {class: 'muted', text: 'no version of this tile in this history'}));
      h.versions.forEach(function (v) {
        var thumbs = el('div', {class: 'thumbs'}, h.layers.map(function (l) {
          return imageFigure(v.layers[l] || null, l, 'tile_' + x + '_' + y + '_' + l + '_' + short(v.commit) + '.png');
        }));
        list.appendChild(el('li', {'data-commit': v.commit, 'data-status': v.status}, [
          el('span', {class: 'status ' + v.status, text: v.status}),
          el('span', {class: 'mono', text: short(v.commit)}), ' ', v.message.split('\n')[0],
          el('div', {class: 'muted', text: [v.author, v.date].filter(Boolean).join(' · ')}),
          v.summary && v.summary.length ? el('div', {class: 'layer-changes', text: v.summary.join('; ')}) : null,
          v.status === 'deleted' ? null : thumbs
        ]));
      });
      panel.dataset.state = 'ready';
    }).catch(function (e) {
      list.appendChild(el('li', {class: 'muted', text: e.message}));
      panel.dataset.state = 'error';
    });
  }

  // ---- interaction ----
  function tileAt(clientX, clientY) {
    var r = canvas.getBoundingClientRect();
    return [Math.floor((clientX - r.left - state.px) / state.scale), Math.floor((clientY - r.top - state.py) / state.scale)];
  }
  function centerOn(x, y) {
    var v = size();
    if (state.scale < 48) state.scale = 48;
    state.px = v.w / 2 - (x + 0.5) * state.scale;
    state.py = v.h / 2 - (y + 0.5) * state.scale;
    draw();
  }
  function zoomAt(factor, cx, cy) {
    var ns = Math.max(0.5, Math.min(512, state.scale * factor));
    state.px = cx - (cx - state.px) * ns / state.scale;
    state.py = cy - (cy - state.py) * ns / state.scale;
    state.scale = ns;
    draw();
  }

  var drag = null;
  canvas.addEventListener('pointerdown', function (e) {
    drag = {x: e.clientX, y: e.clientY, px: state.px, py: state.py, moved: false};
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', function (e) {
    if (!drag) return;
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) { drag.moved = true; canvas.classList.add('dragging'); }
    if (drag.moved) { state.px = drag.px + dx; state.py = drag.py + dy; draw(); }
  });
  canvas.addEventListener('pointerup', function (e) {
    var d = drag;
    drag = null;
    canvas.classList.remove('dragging');
    if (!d || d.moved) return;
    var t = tileAt(e.clientX, e.clientY);
    var key = t[0] + ',' + t[1];
    if ((state.tiles && state.tiles[key] !== undefined) || (state.changed && state.changed[key])) selectTile(t[0], t[1], true);
  });
  canvas.addEventListener('wheel', function (e) {
    e.preventDefault();
    var r = canvas.getBoundingClientRect();
    zoomAt(Math.pow(1.2, -e.deltaY / 100), e.clientX - r.left, e.clientY - r.top);
  }, {passive: false});
  document.getElementById('zoom-in').addEventListener('click', function () { var v = size(); zoomAt(1.5, v.w / 2, v.h / 2); });
  document.getElementById('zoom-out').addEventListener('click', function () { var v = size(); zoomAt(1 / 1.5, v.w / 2, v.h / 2); });
  document.getElementById('zoom-fit').addEventListener('click', function () { fit(); draw(); });
  window.addEventListener('resize', draw);

  ['map', 'diff', 'history'].forEach(function (v) {
    document.getElementById('tab-' + v).addEventListener('click', function () { showView(v); });
  });
  document.getElementById('rev').addEventListener('change', function (e) { state.rev = e.target.value; loadMap(); });
  document.getElementById('from').addEventListener('change', function (e) { state.from = e.target.value; loadMap(); });
  document.getElementById('to').addEventListener('change', function (e) { state.to = e.target.value; loadMap(); });
  document.getElementById('layer').addEventListener('change', function (e) {
    state.layer = e.target.value;
    writeLocation();
    document.body.dataset.mapState = 'loading';
    loadSprites(loadSeq);
    draw();
  });

  window.tilesync = {
    state: state,
    /** Where tile x,y is drawn, in CSS pixels relative to the canvas. */
    screenOf: function (x, y) { return {x: x * state.scale + state.px, y: y * state.scale + state.py, size: state.scale}; },
    frameWidth: frameWidth,
    selectTile: function (x, y) { selectTile(x, y, true); },
    centerOn: centerOn,
    /** Shows tiles x0..x1, y0..y1 (inclusive) as large as they fit. */
    fitBox: function (x0, y0, x1, y1) {
      var v = size();
      var cols = x1 - x0 + 1, rows = y1 - y0 + 1;
      state.scale = Math.min((v.w - 20) / cols, (v.h - 20) / rows);
      state.px = (v.w - cols * state.scale) / 2 - x0 * state.scale;
      state.py = (v.h - rows * state.scale) / 2 - y0 * state.scale;
      draw();
    }
  };

  readLocation();
  Promise.all([api('/api/refs'), api('/api/log?limit=500')]).then(function (res) {
    state.refs = res[0];
    state.commits = res[1].commits;
    if (!state.from && state.commits.length) state.from = 'HEAD';
    fillSelects();
    showView(state.view);
  }).catch(function (e) { setStatus(e.message, true); });
})();
`
