/* The bucket page's drawings: a uPlot chart per number key (mean line, min-max band, drag to
   zoom, double-click to reset), a state timeline per string/boolean key, and sparklines.
   Every drawing takes a series of the read API ({type, step, columns, rows}) and the view
   ({since, until}); window.IssCharts holds the constructors. */
(function () {
  "use strict";

  var Iss = window.Iss;
  var PALETTE = ["#3b7cff", "#13a06a", "#f29d0c", "#e0474f", "#9161ec", "#0fa3b5", "#d9539c", "#6f9a1f"];
  var STATE_COLORS = ["#5b8def", "#f0a030", "#9a6ee8", "#2bb3c0", "#e0608a", "#7fae3a", "#c9822b", "#6a7fd8"];

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function hash(text) {
    var h = 0;
    for (var i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
    return Math.abs(h);
  }
  function stateColor(value) {
    if (value === true) return cssVar("--good");
    if (value === false) return cssVar("--muted");
    return STATE_COLORS[hash(String(value)) % STATE_COLORS.length];
  }
  function fmtRange(a, b) {
    var span = b - a;
    var opts = span < 86400 ? { hour: "numeric", minute: "2-digit", second: "2-digit" } : { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
    var f = function (t) { return new Date(t * 1000).toLocaleString([], opts); };
    return f(a) + " – " + f(b);
  }

  // uPlot's columns from the API's rows, with a null wherever the data has a gap, so a
  // device that was off for a night is a break in the line, not a straight ramp.
  function columns(series) {
    var rows = series.rows, xs = [], mean = [], lo = [], hi = [];
    var gap = series.step ? series.step * 1.5 : rawGap(rows);
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (i && r[0] - rows[i - 1][0] > gap) { xs.push((r[0] + rows[i - 1][0]) / 2); mean.push(null); lo.push(null); hi.push(null); }
      xs.push(r[0]); mean.push(series.step ? r[3] : r[4]); lo.push(r[1]); hi.push(r[2]);
    }
    return [xs, mean, lo, hi];
  }
  function rawGap(rows) {
    if (rows.length < 3) return Infinity;
    var d = [];
    for (var i = 1; i < rows.length; i++) d.push(rows[i][0] - rows[i - 1][0]);
    d.sort(function (a, b) { return a - b; });
    return Math.max(60, d[d.length >> 1] * 5);
  }

  function NumberChart(box, key, color, unit, on) {
    this.box = box; this.key = key; this.color = color; this.unit = unit; this.on = on;
    this.view = null; this.series = null; this.plot = null;
    this.tip = Iss.el("div", "tip");
    this.tip.hidden = true;
    box.appendChild(this.tip);
  }
  NumberChart.prototype.opts = function () {
    var self = this, muted = cssVar("--muted"), grid = cssVar("--grid"), c = this.color;
    var axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { show: false }, font: "11px system-ui, -apple-system, sans-serif" };
    var yAxis = Object.assign({}, axis, {
      space: 28,
      values: function (u, vals) { return vals.map(function (v) { return v === null ? "" : Iss.withUnit(Iss.fmtNumber(v), self.unit); }); },
      size: function (u, values) {
        if (!values) return 40;
        var w = Math.max.apply(null, values.map(function (v) { return String(v).length; }));
        return Math.max(34, 12 + w * 6.6);
      },
    });
    // Tick spacing from the label's width, so time labels never run into each other.
    var xAxis = Object.assign({}, axis, {
      size: 30,
      space: function (u) { return u.scales.x.max - u.scales.x.min <= 600 ? 96 : 78; },
      values: function (u, splits) {
        var span = u.scales.x.max - u.scales.x.min;
        return splits.map(function (t) { return Iss.fmtTick(t, span); });
      },
    });
    return {
      width: Math.max(this.box.clientWidth, 100),
      height: this.box.clientHeight || 180,
      padding: [6, 26, 0, 0],
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { size: 7 } },
      select: { show: true },
      scales: { x: { time: true, range: function () { return [self.view.since, self.view.until]; } } },
      axes: [xAxis, yAxis],
      series: [
        {},
        {
          label: this.key, stroke: c, width: 1.75,
          fill: function (u) {
            var g = u.ctx.createLinearGradient(0, u.bbox.top, 0, u.bbox.top + u.bbox.height);
            g.addColorStop(0, c + "33"); g.addColorStop(1, c + "00");
            return g;
          },
          points: { size: 5, fill: c },
        },
        { stroke: "transparent", points: { show: false } },
        { stroke: "transparent", points: { show: false } },
      ],
      bands: [{ series: [3, 2], fill: c + "26" }],
      hooks: {
        setCursor: [function (u) { self.hover(u); }],
        // What the chart really shows, for tests and anyone inspecting the page.
        setScale: [function (u, key) {
          if (key !== "x") return;
          self.box.dataset.xMin = String(u.scales.x.min);
          self.box.dataset.xMax = String(u.scales.x.max);
        }],
        setSelect: [function (u) {
          if (u.select.width < 5) return;
          var a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          self.on.zoom(a, b);
        }],
      },
    };
  };
  NumberChart.prototype.draw = function (series, view) {
    this.series = series; this.view = view;
    var data = columns(series);
    if (!this.plot) {
      this.plot = new uPlot(this.opts(), data, this.box);
      var on = this.on;
      this.plot.over.addEventListener("dblclick", function () { on.reset(); });
    } else {
      this.plot.setData(data);
    }
  };
  NumberChart.prototype.hover = function (u) {
    var i = u.cursor.idx, tip = this.tip;
    var x = i === null || i === undefined ? null : u.data[0][i];
    if (x === null || u.data[1][i] === null || u.data[1][i] === undefined) { tip.hidden = true; return; }
    var row = null, rows = this.series.rows;
    for (var k = 0; k < rows.length; k++) if (rows[k][0] === x) { row = rows[k]; break; }
    if (!row) { tip.hidden = true; return; }
    var unit = this.unit, f = function (v) { return Iss.withUnit(Iss.fmtNumber(v), unit); };
    var lines = [this.series.step ? fmtRange(row[0], row[0] + this.series.step) : Iss.fmtTime(row[0])];
    if (this.series.step && row[5] > 1) {
      lines.push("mean " + f(row[3]) + " · last " + f(row[4]));
      lines.push("min " + f(row[1]) + " · max " + f(row[2]) + " · " + row[5].toLocaleString() + " values");
    } else {
      lines.push(f(row[4]));
    }
    tip.textContent = lines.join("\n");
    tip.hidden = false;
    var left = u.valToPos(x, "x") + u.over.offsetLeft;
    tip.style.left = Math.min(Math.max(0, left - tip.offsetWidth / 2), this.box.clientWidth - tip.offsetWidth) + "px";
  };
  NumberChart.prototype.resize = function () {
    if (this.plot) this.plot.setSize({ width: Math.max(this.box.clientWidth, 100), height: this.box.clientHeight || 180 });
  };
  NumberChart.prototype.destroy = function () { if (this.plot) this.plot.destroy(); this.plot = null; };

  // A state timeline: one coloured bar per interval, its value written in when it fits.
  function Timeline(box, key) {
    this.box = box; this.key = key; this.series = null; this.view = null;
    this.canvas = Iss.el("canvas");
    this.tip = Iss.el("div", "tip");
    this.tip.hidden = true;
    box.appendChild(this.canvas);
    box.appendChild(this.tip);
    var self = this;
    this.canvas.addEventListener("mousemove", function (ev) { self.hover(ev); });
    this.canvas.addEventListener("mouseleave", function () { self.tip.hidden = true; });
  }
  Timeline.prototype.x = function (t, width) { return (t - this.view.since) / (this.view.until - this.view.since) * width; };
  Timeline.prototype.draw = function (series, view) {
    this.series = series; this.view = view;
    var dpr = window.devicePixelRatio || 1, w = Math.max(this.box.clientWidth, 100), h = this.box.clientHeight || 34;
    var cv = this.canvas;
    cv.width = w * dpr; cv.height = h * dpr; cv.style.width = w + "px"; cv.style.height = h + "px";
    var ctx = cv.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "600 11px system-ui, -apple-system, sans-serif";
    ctx.textBaseline = "middle";
    var rows = series.rows;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], x0 = Math.max(0, this.x(r[0], w)), x1 = Math.min(w, this.x(r[1], w));
      if (x1 < 0 || x0 > w) continue;
      var bw = Math.max(1, x1 - x0);
      ctx.fillStyle = stateColor(r[2]);
      ctx.globalAlpha = r[3] > 1 ? 0.55 : 0.85; // merged intervals: paler
      ctx.fillRect(x0, 4, bw, h - 8);
      ctx.globalAlpha = 1;
      var label = String(r[2]);
      if (bw > ctx.measureText(label).width + 10) {
        ctx.fillStyle = "#fff";
        ctx.fillText(label, x0 + 5, h / 2);
      }
    }
    this.box.dataset.intervals = String(rows.length);
    this.box.dataset.xMin = String(view.since);
    this.box.dataset.xMax = String(view.until);
  };
  Timeline.prototype.hover = function (ev) {
    if (!this.series) return;
    var w = this.box.clientWidth, t = this.view.since + ev.offsetX / w * (this.view.until - this.view.since);
    var rows = this.series.rows, row = null;
    for (var i = 0; i < rows.length; i++) if (rows[i][0] <= t && t <= rows[i][1]) { row = rows[i]; break; }
    if (!row) { this.tip.hidden = true; return; }
    this.tip.textContent = String(row[2]) + (row[3] > 1 ? " (last of " + row[3] + " changes)" : "") + "\n" + fmtRange(row[0], row[1]);
    this.tip.hidden = false;
    this.tip.style.left = Math.min(Math.max(0, ev.offsetX - this.tip.offsetWidth / 2), w - this.tip.offsetWidth) + "px";
  };
  Timeline.prototype.resize = function () { if (this.series) this.draw(this.series, this.view); };
  Timeline.prototype.destroy = function () {};

  // A sparkline: the series' means (or state colours) across the view, in a small canvas.
  function sparkline(canvas, series, view, color) {
    var dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || 96, h = canvas.clientHeight || 24;
    canvas.width = w * dpr; canvas.height = h * dpr;
    var ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, w, h);
    var span = view.until - view.since, rows = series.rows;
    var x = function (t) { return (t - view.since) / span * w; };
    if (series.type === "state") {
      rows.forEach(function (r) { ctx.fillStyle = stateColor(r[2]); ctx.fillRect(x(r[0]), 6, Math.max(1, x(r[1]) - x(r[0])), h - 12); });
      return;
    }
    var col = series.step ? 3 : 4, lo = Infinity, hi = -Infinity;
    rows.forEach(function (r) { lo = Math.min(lo, r[col]); hi = Math.max(hi, r[col]); });
    if (!rows.length) return;
    var y = function (v) { return hi === lo ? h / 2 : h - 2 - (v - lo) / (hi - lo) * (h - 4); };
    if (rows.length === 1) { // one point: a dot where it is
      ctx.fillStyle = color;
      ctx.beginPath(); ctx.arc(x(rows[0][0]), h / 2, 2.5, 0, 2 * Math.PI); ctx.fill();
      return;
    }
    ctx.strokeStyle = color; ctx.lineWidth = 1.25;
    ctx.beginPath();
    rows.forEach(function (r, i) { if (i) ctx.lineTo(x(r[0]), y(r[col])); else ctx.moveTo(x(r[0]), y(r[col])); });
    ctx.stroke();
  }

  window.IssCharts = {
    PALETTE: PALETTE, NumberChart: NumberChart, Timeline: Timeline, sparkline: sparkline, stateColor: stateColor,
  };
})();
