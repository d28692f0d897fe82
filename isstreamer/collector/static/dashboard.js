/* isstreamer collector dashboard: bucket list and live bucket page, on the read API. */
(function () {
  "use strict";

  var KEY_STORE = "isstreamer.accessKey";
  var RANGE_STORE = "isstreamer.range";
  var REFRESH_MS = 2000;
  var LIST_REFRESH_MS = 5000;
  var FULL_RELOAD_MS = 60000; // re-read whole series now and then: picks up replayed old events
  var POINT_LIMIT = 5000;
  var PALETTE = ["#3b7cff", "#13a06a", "#f29d0c", "#e0474f", "#9161ec", "#0fa3b5", "#d9539c", "#6f9a1f"];

  function $(sel) { return document.querySelector(sel); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text; // never innerHTML: keys are user data
    return e;
  }

  // --- access key: needed only when the collector is exposed beyond this machine -------------
  function adoptKeyFromUrl() {
    var hash = new URLSearchParams(location.hash.slice(1));
    var query = new URLSearchParams(location.search);
    var key = hash.get("key") || query.get("accessKey");
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    query.delete("accessKey");
    var qs = query.toString();
    history.replaceState(null, "", location.pathname + (qs ? "?" + qs : "")); // keep it out of history
  }

  function AuthError() { this.message = "access key needed"; }

  function api(path) {
    var headers = {};
    var key = sessionStorage.getItem(KEY_STORE);
    if (key) headers["X-IS-AccessKey"] = key;
    return fetch(path, { headers: headers, cache: "no-store" }).then(function (res) {
      if (res.status === 401) throw new AuthError();
      if (res.status === 404) return null;
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    });
  }

  function showKeyForm() {
    var form = $("#keyform");
    if (!form.hidden) return;
    form.hidden = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      sessionStorage.setItem(KEY_STORE, form.elements.key.value.trim());
      location.reload();
    });
  }

  function setStatus(state, text) {
    $("#status").dataset.state = state;
    $("#status-text").textContent = text;
  }

  function failed(err) {
    if (err instanceof AuthError) {
      setStatus("error", "access key needed");
      showKeyForm();
    } else {
      setStatus("error", "offline, retrying");
    }
  }

  // Runs fn now and every ms after it finished; pauses while the tab is hidden (phones, battery).
  function every(ms, fn) {
    var timer = 0;
    var busy = false;
    function run() {
      clearTimeout(timer);
      timer = 0;
      if (busy || document.hidden) return;
      busy = true;
      Promise.resolve().then(fn).catch(failed).then(function () {
        busy = false;
        if (!document.hidden) timer = setTimeout(run, ms);
      });
    }
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) setStatus("paused", "paused"); else run();
    });
    run();
    return run;
  }

  // --- formatting ---------------------------------------------------------------------------
  function fmtNumber(v) {
    if (Number.isInteger(v)) return v.toLocaleString();
    var a = Math.abs(v);
    if (a >= 1e9 || (a > 0 && a < 1e-3)) return v.toExponential(2);
    var digits = a >= 1000 ? 1 : a >= 100 ? 2 : a >= 1 ? 2 : 3;
    return v.toLocaleString(undefined, { maximumFractionDigits: digits });
  }
  function fmtValue(v) { return typeof v === "number" ? fmtNumber(v) : String(v); }
  function fmtAgo(epoch) {
    if (epoch === null || epoch === undefined) return "";
    var s = Math.max(0, Date.now() / 1000 - epoch);
    if (s < 5) return "just now";
    if (s < 60) return Math.floor(s) + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }
  function fmtTime(epoch) { return new Date(epoch * 1000).toLocaleString(); }
  function valueNode(v) {
    if (typeof v === "boolean") return el("span", "pill " + (v ? "on" : "off"), String(v));
    if (typeof v === "number") return el("span", "num", fmtNumber(v));
    var s = el("span", "str", v);
    s.title = v;
    return s;
  }
  // Tick labels: clock time for spans up to two days, dates beyond; seconds for short spans.
  function fmtTick(t, span) {
    var d = new Date(t * 1000);
    if (span > 2 * 86400) return d.toLocaleDateString([], { month: "short", day: "numeric" });
    var opts = { hour: "numeric", minute: "2-digit" };
    if (span <= 600) opts.second = "2-digit";
    return d.toLocaleTimeString([], opts);
  }
  function bucketPath(bucketKey) { return "/api/buckets/" + encodeURIComponent(bucketKey); }

  // --- page: bucket list ---------------------------------------------------------------------
  function bucketsPage() {
    document.querySelectorAll(".origin").forEach(function (e) { e.textContent = location.origin; });
    every(LIST_REFRESH_MS, function () {
      return api("/api/buckets").then(function (buckets) {
        setStatus("live", "live");
        var cards = (buckets || []).map(function (b) {
          var card = el("a", "card bucket");
          card.href = "/buckets/" + encodeURIComponent(b.bucketKey);
          card.appendChild(el("div", "name", b.bucketName || b.bucketKey));
          card.appendChild(el("div", "key", b.bucketKey));
          var stats = el("div", "stats");
          var count = el("span");
          count.appendChild(el("b", null, b.events.toLocaleString()));
          count.appendChild(document.createTextNode(b.events === 1 ? " event" : " events"));
          stats.appendChild(count);
          var age = el("span", null, b.lastEpoch ? "updated " + fmtAgo(b.lastEpoch) : "no events yet");
          if (b.lastEpoch) age.title = fmtTime(b.lastEpoch);
          stats.appendChild(age);
          card.appendChild(stats);
          return card;
        });
        $("#buckets").replaceChildren.apply($("#buckets"), cards);
        $("#empty").hidden = cards.length > 0;
      });
    });
  }

  // --- page: one bucket ----------------------------------------------------------------------
  function bucketPage() {
    var bucketKey = decodeURIComponent(location.pathname.slice("/buckets/".length));
    var base = bucketPath(bucketKey);
    var stored = localStorage.getItem(RANGE_STORE);
    var range = stored === null ? 3600 : Number(stored);
    if (!(range >= 0)) range = 3600;
    var charts = new Map(); // key -> chart state
    var order = "";
    var named = false;
    $("#title").textContent = bucketKey;
    $("#crumb-name").textContent = bucketKey;

    function now() { return Date.now() / 1000; }

    function eventsUrl(key, since) {
      var url = base + "/events?key=" + encodeURIComponent(key) + "&limit=" + POINT_LIMIT;
      return since === null ? url : url + "&since=" + since;
    }

    function load(c, info) {
      return api(eventsUrl(c.key, range ? now() - range : null)).then(function (points) {
        c.xs = []; c.ys = [];
        add(c, points || [], -Infinity);
        c.seen = info.count;
        c.loadedAt = Date.now();
        c.truncated = (points || []).length >= POINT_LIMIT;
      });
    }

    function add(c, points, after) {
      var added = 0;
      for (var i = 0; i < points.length; i++) {
        var p = points[i];
        if (p.epoch <= after) continue; // "since" is inclusive: skip what we already have
        added++;
        if (c.lastEpoch === undefined || p.epoch > c.lastEpoch) c.lastEpoch = p.epoch;
        if (typeof p.value !== "number") continue; // a key that once held a string or bool
        c.xs.push(p.epoch);
        c.ys.push(p.value);
      }
      return added;
    }

    function update(c, info) {
      var stale = Date.now() - c.loadedAt > FULL_RELOAD_MS;
      // Fewer events than we saw (retention), or more but none newer (late or replayed ones):
      // the increment cannot be trusted, read the range again.
      var changed = info.count < c.seen || (info.count > c.seen && info.lastEpoch <= c.lastEpoch);
      if (c.lastEpoch === undefined || stale || changed) return load(c, info);
      if (info.lastEpoch <= c.lastEpoch) return Promise.resolve();
      var after = c.lastEpoch;
      return api(eventsUrl(c.key, after)).then(function (points) {
        points = points || [];
        if (points.length >= POINT_LIMIT) return load(c, info);
        c.seen += add(c, points, after);
        var start = range ? now() - range : -Infinity;
        var drop = 0;
        while (drop < c.xs.length && c.xs[drop] < start) drop++;
        if (drop) { c.xs.splice(0, drop); c.ys.splice(0, drop); }
      });
    }

    function xRange(u, min, max) {
      if (range) { var t = now(); return [t - range, t]; }
      if (min === null || max === null || min === max) { var m = (min === null ? now() : min); return [m - 60, m + 60]; }
      return [min, max];
    }

    function makePlot(c) {
      var css = getComputedStyle(document.documentElement);
      var muted = css.getPropertyValue("--muted").trim();
      var grid = css.getPropertyValue("--grid").trim();
      var axis = {
        stroke: muted,
        grid: { stroke: grid, width: 1 },
        ticks: { show: false },
        font: "11px system-ui, -apple-system, sans-serif",
      };
      var yAxis = Object.assign({}, axis, {
        values: function (u, vals) { return vals.map(function (v) { return v === null ? "" : fmtNumber(v); }); },
        size: function (u, values) {
          if (!values) return 40;
          var w = Math.max.apply(null, values.map(function (v) { return String(v).length; }));
          return Math.max(34, 10 + w * 6.5);
        },
      });
      var xAxis = Object.assign({}, axis, {
        space: 64,
        size: 30,
        values: function (u, splits) {
          var span = u.scales.x.max - u.scales.x.min;
          return splits.map(function (t) { return fmtTick(t, span); });
        },
      });
      var opts = {
        width: Math.max(c.plotBox.clientWidth, 100),
        height: c.plotBox.clientHeight || 180,
        padding: [6, 22, 0, 0], // room for the last time label
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { size: 7 } },
        scales: { x: { time: true, range: xRange } },
        axes: [xAxis, yAxis],
        series: [{}, {
          label: c.key,
          stroke: c.color,
          width: 1.75,
          fill: function (u) {
            var g = u.ctx.createLinearGradient(0, u.bbox.top, 0, u.bbox.top + u.bbox.height);
            g.addColorStop(0, c.color + "40");
            g.addColorStop(1, c.color + "00");
            return g;
          },
          points: { size: 5, fill: c.color },
        }],
        hooks: { setCursor: [function (u) { hover(c, u.cursor.idx); }] },
      };
      c.plot = new uPlot(opts, [c.xs, c.ys], c.plotBox);
    }

    function hover(c, idx) {
      if (idx === null || idx === undefined || c.xs[idx] === undefined) {
        c.valueEl.textContent = fmtValue(c.info.lastValue);
        c.metaEl.textContent = meta(c);
      } else {
        c.valueEl.textContent = fmtNumber(c.ys[idx]);
        c.metaEl.textContent = fmtTime(c.xs[idx]);
      }
    }

    function meta(c) {
      var text = "updated " + fmtAgo(c.info.lastEpoch);
      if (c.truncated) text += " · latest " + POINT_LIMIT.toLocaleString() + " points";
      return text;
    }

    function chartFor(info) {
      var c = charts.get(info.key);
      if (c) return c;
      c = { key: info.key, color: PALETTE[charts.size % PALETTE.length], xs: [], ys: [], seen: 0, loadedAt: 0, info: info };
      c.card = el("section", "card chart");
      var head = el("div", "chart-head");
      var name = el("div", "chart-key", info.key);
      name.title = info.key;
      head.appendChild(name);
      c.valueEl = el("div", "chart-value");
      head.appendChild(c.valueEl);
      c.card.appendChild(head);
      c.metaEl = el("div", "chart-meta");
      c.card.appendChild(c.metaEl);
      c.plotBox = el("div", "plot");
      c.plotBox.setAttribute("role", "img");
      c.plotBox.setAttribute("aria-label", "chart of " + info.key);
      c.card.appendChild(c.plotBox);
      charts.set(info.key, c);
      return c;
    }

    function draw(c) {
      if (!c.plot) makePlot(c); else c.plot.setData([c.xs, c.ys]);
      hover(c, c.plot.cursor.idx);
    }

    function renderTable(keys) {
      var rows = keys.map(function (k) {
        var tr = el("tr");
        var key = el("td", "key", k.key);
        key.title = k.key;
        tr.appendChild(key);
        var value = el("td");
        value.appendChild(valueNode(k.lastValue));
        tr.appendChild(value);
        var age = el("td", "age", fmtAgo(k.lastEpoch));
        age.title = fmtTime(k.lastEpoch);
        tr.appendChild(age);
        tr.appendChild(el("td", "count", k.count.toLocaleString()));
        return tr;
      });
      var body = $("#latest tbody");
      body.replaceChildren.apply(body, rows);
      $("#nokeys").hidden = rows.length > 0;
    }

    function placeCharts(numeric) {
      var wanted = numeric.map(function (k) { return k.key; });
      var signature = JSON.stringify(wanted);
      if (signature === order) return;
      order = signature;
      charts.forEach(function (c, key) {
        if (wanted.indexOf(key) < 0) { if (c.plot) c.plot.destroy(); c.card.remove(); charts.delete(key); }
      });
      var box = $("#charts");
      wanted.forEach(function (key) { box.appendChild(charts.get(key).card); }); // sorted, like the table
    }

    function nameBucket() {
      return api("/api/buckets").then(function (buckets) {
        var b = (buckets || []).filter(function (x) { return x.bucketKey === bucketKey; })[0];
        if (!b) return;
        named = true;
        $("#title").textContent = b.bucketName || bucketKey;
        $("#crumb-name").textContent = b.bucketName || bucketKey;
        document.title = (b.bucketName || bucketKey) + " · isstreamer";
      });
    }

    function tick() {
      return api(base + "/keys").then(function (keys) {
        setStatus("live", "live");
        $("#missing").hidden = keys !== null;
        if (keys === null) return;
        var naming = named ? Promise.resolve() : nameBucket();
        renderTable(keys);
        var numeric = keys.filter(function (k) { return typeof k.lastValue === "number"; });
        numeric.forEach(chartFor);
        placeCharts(numeric);
        return Promise.all([naming].concat(numeric.map(function (info) {
          var c = charts.get(info.key);
          c.info = info;
          return update(c, info).then(function () { draw(c); });
        })));
      });
    }

    var refresh = every(REFRESH_MS, tick);

    document.querySelectorAll("#ranges button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.range) === range));
      b.addEventListener("click", function () {
        range = Number(b.dataset.range);
        localStorage.setItem(RANGE_STORE, String(range));
        document.querySelectorAll("#ranges button").forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
        charts.forEach(function (c) { c.loadedAt = 0; }); // next tick reloads every series
        refresh();
      });
    });

    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        charts.forEach(function (c) {
          if (c.plot) c.plot.setSize({ width: Math.max(c.plotBox.clientWidth, 100), height: c.plotBox.clientHeight || 180 });
        });
      }).observe($("#charts"));
    }
    // Axis and grid colours come from CSS variables: rebuild the charts when the scheme flips.
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
      charts.forEach(function (c) { if (c.plot) { c.plot.destroy(); c.plot = null; draw(c); } });
    });
  }

  adoptKeyFromUrl();
  if (document.body.dataset.page === "bucket") bucketPage(); else bucketsPage();
})();
