/* The bucket page, continued: the latest-values table with sparklines (virtualised too), the
   refresh loop with its live tail, and the controls (presets, filter, back button, resize). */
(function () {
  "use strict";

  var Iss = window.Iss, U = window.IssUnits, C = window.IssCharts;
  var B = window.IssBucketParts, S = window.IssBucket.state, table = window.IssBucket.table;
  var $ = Iss.$, el = Iss.el;
  var SPARK_POINTS = 48, SPARK_REFRESH_MS = 30000;
  var spark = new Map(); // key -> {series, view, at}: sparklines of keys without a chart shown
  var named = false, tableSig = "";

  // --- the latest-values table ----------------------------------------------------------------
  function tableKeys() {
    var f = S.filter.toLowerCase();
    return S.keys.filter(function (k) { return !f || k.key.toLowerCase().indexOf(f) >= 0; });
  }
  function renderTable() {
    var keys = tableKeys(), sig = keys.map(function (k) { return k.key; }).join("\u0000");
    $("#table-count").textContent = keys.length.toLocaleString();
    if (sig !== tableSig) {
      tableSig = sig;
      table.setRows(keys.map(function (k) { return tableRow(k.key); }));
    } else {
      table.update();
    }
  }
  function tableRow(key) {
    return {
      id: key, height: B.TABLE_ROW_H,
      render: function (box) {
        box.className = "vrow trow";
        var name = el("span", "tkey", key);
        name.title = key;
        box.appendChild(name);
        box.appendChild(el("canvas", "spark"));
        box.appendChild(el("span", "tval"));
        box.appendChild(el("span", "tage"));
        fillRow(box, key);
      },
    };
  }
  function fillRow(box, key) {
    var k = S.info.get(key);
    if (!k) return;
    var unit = typeof k.lastValue === "number" ? U.unitOf(key) : "";
    box.children[2].replaceChildren(Iss.valueNode(k.lastValue, unit));
    box.children[3].textContent = Iss.fmtAgo(k.lastEpoch);
    box.children[3].title = Iss.fmtTime(k.lastEpoch);
    var d = S.data.get("number:" + key) || S.data.get("state:" + key) || spark.get(key);
    if (d) C.sparkline(box.children[1], d.series, d.view, C.PALETTE[0]);
  }
  function refreshTable() { table.shown.forEach(function (box, key) { fillRow(box, key); }); }

  // Sparklines of the shown table rows that have no chart data: a few small requests.
  function loadSparks() {
    var view = S.view, stale = Date.now() - SPARK_REFRESH_MS, keys = [];
    if (!view) return Promise.resolve();
    table.shown.forEach(function (box, key) {
      if (S.data.has("number:" + key) || S.data.has("state:" + key)) return;
      var s = spark.get(key);
      if (!s || s.at < stale) keys.push(key);
    });
    if (!keys.length) return Promise.resolve();
    return Promise.all(B.chunks(keys, 40).map(function (list) {
      return Iss.api(B.seriesUrl(list, view, SPARK_POINTS)).then(function (answer) {
        var at = Date.now();
        answer.series.forEach(function (s) { spark.set(s.key, { series: s, view: view, at: at }); });
      });
    })).then(refreshTable);
  }

  // --- the refresh loop -------------------------------------------------------------------------
  function nameBucket() {
    return Iss.api(B.base).then(function (b) {
      named = true;
      var name = b.bucketName || B.bucketKey;
      $("#title").textContent = name;
      $("#crumb-name").textContent = name;
      document.title = name + " · isstreamer";
    });
  }
  function showMissing() {
    $("#missing").hidden = false;
    $(".layout").hidden = true;
    $("#tools").hidden = true;
    document.title = "No such bucket · isstreamer";
  }

  // The key list of a big bucket is a megabyte: read it every BIG_KEYS_REFRESH_MS only.
  var keysAt = 0, BIG_BUCKET = 1000, BIG_KEYS_REFRESH_MS = 10000;
  function readKeys() {
    if (S.keys.length > BIG_BUCKET && Date.now() - keysAt < BIG_KEYS_REFRESH_MS) return Promise.resolve(S.keys);
    return Iss.api(B.base + "/keys").then(function (keys) { keysAt = Date.now(); return keys; });
  }
  function tick() {
    return readKeys().then(function (keys) {
      Iss.setStatus("live", S.view && !S.view.live ? "zoomed" : "live");
      S.keys = keys;
      S.info = new Map(keys.map(function (k) { return [k.key, k]; }));
      S.first = S.last = null;
      keys.forEach(function (k) {
        if (S.first === null || k.firstEpoch < S.first) S.first = k.firstEpoch;
        if (S.last === null || k.lastEpoch > S.last) S.last = k.lastEpoch;
      });
      var naming = named ? null : nameBucket();
      var old = S.view;
      // The live tail: a new view ending now, as often as the charts' resolution can show it.
      var every = old && old.live ? Math.min(30000, Math.max(B.KEYS_REFRESH_MS, (old.until - old.since) / 600 * 1000)) : Infinity;
      var due = !old || (old.live && Date.now() - S.lastChartLoad >= every);
      if (due) { S.view = B.computeView(); S.inflight.clear(); }
      B.relayout(false);
      renderTable();
      refreshTable();
      return Promise.all([naming, B.loadCharts(false), loadSparks()]);
    }, function (err) {
      if (err instanceof Iss.NotFound) { showMissing(); return; }
      throw err;
    });
  }

  // --- controls ---------------------------------------------------------------------------------
  B.readUrl();
  try { S.collapsed = JSON.parse(localStorage.getItem(B.collapseStore) || "null"); } catch (e) { S.collapsed = null; }
  if (S.collapsed) S.collapsed = new Set(S.collapsed);
  $("#title").textContent = B.bucketKey;
  $("#crumb-name").textContent = B.bucketKey;
  document.querySelectorAll("#ranges button").forEach(function (b) {
    b.addEventListener("click", function () {
      S.preset = b.dataset.range;
      S.zoom = null;
      localStorage.setItem(B.RANGE_STORE, S.preset);
      B.writeUrl(true);
      B.viewChanged();
    });
  });
  $("#reset-zoom").addEventListener("click", function () { B.setZoom(null); });
  var typing = 0;
  $("#filter").addEventListener("input", function () {
    clearTimeout(typing);
    typing = setTimeout(function () {
      S.filter = $("#filter").value.trim();
      B.writeUrl(false);
      B.relayout(true);
      renderTable();
      B.loadCharts(false).catch(Iss.failed);
    }, 120);
  });
  window.addEventListener("popstate", function () { B.readUrl(); B.relayout(true); renderTable(); B.viewChanged(); });
  window.IssBucket.charts.onShown(function () { B.loadCharts(false).catch(Iss.failed); });
  table.onShown(function () { loadSparks().catch(Iss.failed); });
  var width = 0;
  window.addEventListener("resize", function () {
    if ($("#charts").clientWidth === width) return;
    width = $("#charts").clientWidth;
    B.relayout(false);
    S.cards.forEach(function (c) { c.chart.resize(); });
  });
  // On a phone the table starts folded: the charts come first.
  if (window.matchMedia("(max-width: 1060px)").matches) $("#table-box").open = false;
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () { B.relayout(true); });
  B.markRange();
  B.writeUrl(false);
  Iss.every(B.KEYS_REFRESH_MS, tick);
})();
