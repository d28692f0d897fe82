/* The bucket page: the view (preset range fitted to the data, or a zoom; kept in the URL),
   keys grouped by prefix and filtered, charts drawn only when on screen, a live tail. */
(function () {
  "use strict";

  var Iss = window.Iss, U = window.IssUnits, C = window.IssCharts;
  var $ = Iss.$, el = Iss.el;
  var RANGE_STORE = "isstreamer.range";
  var PRESETS = { "5m": 300, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "all": 0 };
  var KEYS_REFRESH_MS = 2000, MANY_KEYS = 60, WHOLE_BUCKET_KEYS = 60, CHUNK = 40;
  var GROUP_H = 44, NUMBER_H = 262, STATE_H = 120, TABLE_ROW_H = 38, GAP = 16, MIN_CARD = 340;

  var bucketKey = decodeURIComponent(location.pathname.slice("/buckets/".length));
  var base = Iss.bucketPath(bucketKey);
  var collapseStore = "isstreamer.collapsed." + bucketKey;
  var S = {
    keys: [], info: new Map(), first: null, last: null,
    preset: "1h", zoom: null, filter: "",
    collapsed: null, // Set of group names, or null: the default (collapsed when many keys)
    data: new Map(), // "number:key" / "state:key" -> {series, view}
    cards: new Map(), // card id -> {key, type, chart, box}
    pending: 0, layout: "", view: null, lastChartLoad: 0,
    inflight: new Set(), // keys asked for the current view and not answered yet
  };
  var charts = new window.IssVList($("#charts"), null);
  var table = new window.IssVList($("#table-rows"), $("#table-scroll"));

  function now() { return Date.now() / 1000; }

  // --- the view: what time range the charts show ------------------------------------------
  function readUrl() {
    var q = new URLSearchParams(location.search);
    var from = Number(q.get("from")), to = Number(q.get("to"));
    S.zoom = q.has("from") && q.has("to") && from < to ? { since: from, until: to } : null;
    var preset = q.get("range") || localStorage.getItem(RANGE_STORE) || "1h";
    S.preset = PRESETS.hasOwnProperty(preset) ? preset : "1h";
    S.filter = q.get("q") || "";
    $("#filter").value = S.filter;
  }
  function writeUrl(push) {
    var q = new URLSearchParams();
    if (S.zoom) { q.set("from", S.zoom.since.toFixed(3)); q.set("to", S.zoom.until.toFixed(3)); }
    q.set("range", S.preset);
    if (S.filter) q.set("q", S.filter);
    var url = location.pathname + "?" + q.toString();
    if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
  }
  // A preset ends now and starts at the range's start or the data's first event, whichever is
  // later: a fresh stream fills the chart instead of being a sliver at its right edge.
  function computeView() {
    if (S.zoom) return { since: S.zoom.since, until: S.zoom.until, live: false };
    var t = now(), range = PRESETS[S.preset];
    var since = range ? t - range : (S.first === null ? t - 3600 : S.first);
    if (S.first !== null && S.first > since) since = S.first;
    var until = Math.max(t, S.last || t);
    if (until - since < 60) since = until - 60;
    since -= (until - since) * 0.01; // the first point off the axis line
    return { since: since, until: until, live: true };
  }
  function markRange() {
    document.querySelectorAll("#ranges button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(!S.zoom && b.dataset.range === S.preset));
    });
    $("#zoomed").hidden = !S.zoom;
    if (S.zoom) $("#zoom-text").textContent = Iss.fmtTime(S.zoom.since) + " – " + Iss.fmtTime(S.zoom.until);
  }
  function setZoom(since, until) {
    S.zoom = since === null ? null : { since: since, until: until };
    writeUrl(true);
    viewChanged();
  }
  function viewChanged() {
    markRange();
    S.view = computeView();
    S.inflight.clear();
    document.body.dataset.ready = "0";
    loadCharts(false).catch(Iss.failed);
  }

  // --- keys, groups, filter -------------------------------------------------------------------
  function groupOf(key) {
    var m = /^[^_.\/:-]+[_.\/:-]/.exec(key); // "cpu_", "sensor.", "pi/"
    return m ? m[0] : "";
  }
  function groups() {
    var f = S.filter.toLowerCase(), byName = new Map();
    S.keys.forEach(function (k) {
      if (f && k.key.toLowerCase().indexOf(f) < 0) return;
      var g = groupOf(k.key);
      if (!byName.has(g)) byName.set(g, []);
      byName.get(g).push(k);
    });
    var out = [], other = [];
    byName.forEach(function (keys, name) { if (name && keys.length > 1) out.push({ name: name, keys: keys }); else other = other.concat(keys); });
    out.sort(function (a, b) { return a.name < b.name ? -1 : 1; });
    if (other.length) out.push({ name: "", keys: other.sort(function (a, b) { return a.key < b.key ? -1 : 1; }) });
    return out;
  }
  function isCollapsed(name) {
    if (S.filter) return false; // a search shows every match
    if (S.collapsed) return S.collapsed.has(name);
    return S.keys.length > MANY_KEYS;
  }
  function toggle(name) {
    if (!S.collapsed) {
      S.collapsed = new Set();
      if (S.keys.length > MANY_KEYS) groups().forEach(function (g) { S.collapsed.add(g.name); });
    }
    if (S.collapsed.has(name)) S.collapsed.delete(name); else S.collapsed.add(name);
    localStorage.setItem(collapseStore, JSON.stringify(Array.from(S.collapsed)));
    relayout(true);
  }

  // --- the chart list ---------------------------------------------------------------------------
  function relayout(force) {
    var width = $("#charts").clientWidth || 600;
    var cols = Math.max(1, Math.floor((width + GAP) / (MIN_CARD + GAP)));
    var gs = groups(), rows = [], sig = [cols];
    var headers = gs.length > 1;
    gs.forEach(function (g) {
      var collapsed = headers && isCollapsed(g.name);
      if (headers) rows.push(groupRow(g, collapsed));
      sig.push(g.name, collapsed, g.keys.length);
      if (collapsed) return;
      ["number", "state"].forEach(function (type) {
        var ks = g.keys.filter(function (k) { return type === "number" ? k.types.indexOf("number") >= 0 : k.types.indexOf("string") >= 0 || k.types.indexOf("boolean") >= 0; });
        for (var i = 0; i < ks.length; i += cols) rows.push(cardRow(type, ks.slice(i, i + cols), cols));
        sig.push(type, ks.map(function (k) { return k.key; }).join("\u0000"));
      });
    });
    var signature = JSON.stringify(sig);
    if (!force && signature === S.layout) return;
    S.layout = signature;
    charts.setRows(rows);
    $("#nokeys").hidden = S.keys.length > 0;
    $("#count").textContent = countText(gs);
  }
  function countText(gs) {
    var n = gs.reduce(function (a, g) { return a + g.keys.length; }, 0);
    var text = n.toLocaleString() + (n === 1 ? " key" : " keys");
    if (S.filter) text += " of " + S.keys.length.toLocaleString();
    return gs.length > 1 ? text + " in " + gs.length + " groups" : text;
  }
  function groupRow(g, collapsed) {
    return {
      id: "g:" + g.name + ":" + collapsed, height: GROUP_H,
      render: function (box) {
        var b = el("button", "group-head");
        b.type = "button";
        b.setAttribute("aria-expanded", String(!collapsed));
        b.appendChild(el("span", "chev", collapsed ? "▸" : "▾"));
        b.appendChild(el("span", "group-name", g.name ? g.name + "*" : "other keys"));
        b.appendChild(el("span", "group-count", g.keys.length.toLocaleString()));
        b.addEventListener("click", function () { toggle(g.name); });
        box.appendChild(b);
      },
    };
  }
  function cardRow(type, keys, cols) {
    return {
      id: type + ":" + keys.map(function (k) { return k.key; }).join("\u0000"),
      height: type === "number" ? NUMBER_H : STATE_H,
      render: function (box) {
        box.className = "vrow card-row";
        box.style.gridTemplateColumns = "repeat(" + cols + ", minmax(0, 1fr))";
        keys.forEach(function (k) { box.appendChild(makeCard(type, k)); });
      },
      remove: function () { keys.forEach(function (k) { dropCard(type + ":" + k.key); }); },
    };
  }
  function makeCard(type, k) {
    var id = type + ":" + k.key, unit = type === "number" ? U.unitOf(k.key) : "";
    var card = el("section", "card chart " + type);
    var head = el("div", "chart-head");
    var name = el("div", "chart-key", k.key);
    name.title = k.key + (unit ? " (" + unit + ")" : "");
    head.appendChild(name);
    var value = el("div", "chart-value");
    head.appendChild(value);
    card.appendChild(head);
    var meta = el("div", "chart-meta");
    card.appendChild(meta);
    var box = el("div", type === "number" ? "plot" : "timeline");
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", (type === "number" ? "chart of " : "timeline of ") + k.key);
    card.appendChild(box);
    var color = C.PALETTE[(hashKey(k.key)) % C.PALETTE.length];
    var on = { zoom: function (a, b) { setZoom(a, b); }, reset: function () { if (S.zoom) setZoom(null); } };
    var chart = type === "number" ? new C.NumberChart(box, k.key, color, unit, on) : new C.Timeline(box, k.key);
    var c = { id: id, key: k.key, type: type, unit: unit, chart: chart, box: box, card: card, value: value, meta: meta, drawnFor: null };
    S.cards.set(id, c);
    requestAnimationFrame(function () { drawCard(c); });
    return card;
  }
  function hashKey(key) { var h = 0; for (var i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0; return Math.abs(h); }
  function dropCard(id) { var c = S.cards.get(id); if (c) { c.chart.destroy(); S.cards.delete(id); } }

  function drawCard(c) {
    var info = S.info.get(c.key);
    if (info) {
      c.value.replaceChildren(Iss.valueNode(info.lastValue, c.unit));
      c.meta.textContent = "updated " + Iss.fmtAgo(info.lastEpoch);
    }
    var d = S.data.get(c.id);
    if (!d || S.cards.get(c.id) !== c) return; // no data yet, or a card scrolled away
    if (c.drawnFor === d) return;
    c.chart.draw(d.series, d.view);
    c.drawnFor = d;
    c.card.dataset.drawn = "1";
    if (!d.series.rows.length) c.meta.textContent = "no data in this range · updated " + Iss.fmtAgo(info && info.lastEpoch);
    else if (d.series.step) c.meta.textContent = "every " + fmtStep(d.series.step) + " · updated " + Iss.fmtAgo(info && info.lastEpoch);
  }
  function fmtStep(s) { return s < 60 ? s + " s" : s < 3600 ? s / 60 + " min" : s < 86400 ? s / 3600 + " h" : s / 86400 + " d"; }

  // --- data -------------------------------------------------------------------------------------
  function seriesUrl(keys, view, points) {
    var q = "since=" + view.since.toFixed(3) + "&until=" + view.until.toFixed(3) + "&points=" + points;
    // One key=, once, asks for that key's single series; twice, for the {"series": [...]}
    // answer, which also holds its state series when the key has both kinds of value.
    (keys.length === 1 ? [keys[0], keys[0]] : keys).forEach(function (k) { q += "&key=" + encodeURIComponent(k); });
    return base + "/series?" + q;
  }
  // Every shown card's series for the current view: the whole bucket in one request when it is
  // small, else the shown keys in a few.
  function loadCharts(force) {
    var view = S.view, want = new Set();
    if (!view) return Promise.resolve();
    if (force) S.inflight.clear();
    S.cards.forEach(function (c) {
      var d = S.data.get(c.id);
      if ((!d || d.view !== view) && !S.inflight.has(c.key)) want.add(c.key);
    });
    if (!want.size) { markReady(); return Promise.resolve(); }
    want.forEach(function (k) { S.inflight.add(k); });
    var points = chartPoints();
    var lists = S.keys.length <= WHOLE_BUCKET_KEYS ? [[]] : chunks(Array.from(want), CHUNK);
    S.pending++;
    S.lastChartLoad = Date.now();
    return Promise.all(lists.map(function (keys) {
      return Iss.api(seriesUrl(keys, view, points)).then(function (answer) { store(answer.series, view); });
    })).then(function () {
      S.pending--;
      want.forEach(function (k) { S.inflight.delete(k); });
      if (view === S.view) S.cards.forEach(drawCard);
      markReady();
    }, function (err) {
      S.pending--;
      want.forEach(function (k) { S.inflight.delete(k); });
      throw err;
    });
  }
  // About one point per pixel of a card's width.
  function chartPoints() {
    var width = $("#charts").clientWidth || 600;
    var cols = Math.max(1, Math.floor((width + GAP) / (MIN_CARD + GAP)));
    return Math.round(Math.min(2000, Math.max(100, width / cols)));
  }
  function store(list, view) {
    list.forEach(function (s) { S.data.set((s.type === "number" ? "number:" : "state:") + s.key, { series: s, view: view }); });
  }
  function chunks(list, n) { var out = []; for (var i = 0; i < list.length; i += n) out.push(list.slice(i, i + n)); return out; }

  // For tests and the benchmark: every card on screen drawn with the current view's data.
  function markReady() {
    var all = S.cards.size, drawn = 0;
    S.cards.forEach(function (c) { var d = S.data.get(c.id); if (d && c.drawnFor === d && d.view === S.view) drawn++; });
    document.body.dataset.cards = String(all);
    document.body.dataset.drawn = String(drawn);
    var done = drawn === all && !S.pending && S.keys.length > 0;
    document.body.dataset.ready = done ? "1" : "0";
    if (done && !window.issReadyMs) window.issReadyMs = performance.now();
  }

  window.IssBucket = { state: S, charts: charts, table: table, computeView: computeView };
  window.IssBucketParts = {
    readUrl: readUrl, writeUrl: writeUrl, markRange: markRange, computeView: computeView, viewChanged: viewChanged, relayout: relayout,
    loadCharts: loadCharts, markReady: markReady, setZoom: setZoom, store: store, chunks: chunks,
    seriesUrl: seriesUrl, drawCard: drawCard, PRESETS: PRESETS, RANGE_STORE: RANGE_STORE,
    KEYS_REFRESH_MS: KEYS_REFRESH_MS, TABLE_ROW_H: TABLE_ROW_H, collapseStore: collapseStore,
    bucketKey: bucketKey, base: base, now: now,
  };
})();
