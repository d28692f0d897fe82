/* A virtualised list: rows of known height, of which only those near the visible part exist
   in the DOM, so 10,000 keys cost as much as the thirty on screen.
   new IssVList(container, scroller) where scroller is an element with overflow, or null for
   the window; setRows([{id, height, render(el), remove(el)}]); onShown(fn) after each pass. */
(function () {
  "use strict";

  var OVERSCAN_PX = 600; // rows this far outside the visible part are drawn too: smooth scrolling

  function VList(container, scroller) {
    this.box = container;
    this.scroller = scroller;
    this.rows = [];
    this.tops = [];
    this.shown = new Map(); // row id -> element
    this.listeners = [];
    this.box.style.position = "relative";
    var self = this, queued = false;
    this.schedule = function () {
      if (queued) return;
      queued = true;
      requestAnimationFrame(function () { queued = false; self.update(); });
    };
    (scroller || window).addEventListener("scroll", this.schedule, { passive: true });
    window.addEventListener("resize", this.schedule);
  }

  VList.prototype.setRows = function (rows) {
    var wanted = new Set(rows.map(function (r) { return r.id; }));
    var self = this;
    this.shown.forEach(function (el, id) { if (!wanted.has(id)) self.drop(id); });
    this.rows = rows;
    this.tops = [];
    var y = 0;
    for (var i = 0; i < rows.length; i++) { this.tops.push(y); y += rows[i].height; }
    this.box.style.height = y + "px";
    this.shown.forEach(function (el, id) { // rows that stay may have moved
      var i = self.index(id);
      el.style.top = self.tops[i] + "px";
    });
    this.update();
  };

  VList.prototype.index = function (id) {
    for (var i = 0; i < this.rows.length; i++) if (this.rows[i].id === id) return i;
    return -1;
  };

  VList.prototype.drop = function (id) {
    var el = this.shown.get(id);
    if (!el) return;
    if (el.issRow && el.issRow.remove) el.issRow.remove(el);
    el.remove();
    this.shown.delete(id);
  };

  // The part of the list that is visible, in the list's own coordinates.
  VList.prototype.visible = function () {
    if (this.scroller) return [this.scroller.scrollTop, this.scroller.scrollTop + this.scroller.clientHeight];
    var top = this.box.getBoundingClientRect().top;
    return [-top, -top + window.innerHeight];
  };

  VList.prototype.update = function () {
    var range = this.visible(), lo = range[0] - OVERSCAN_PX, hi = range[1] + OVERSCAN_PX;
    var tops = this.tops, rows = this.rows;
    // Binary search for the first row that ends below lo.
    var a = 0, b = rows.length;
    while (a < b) { var m = (a + b) >> 1; if (tops[m] + rows[m].height < lo) a = m + 1; else b = m; }
    var keep = new Set();
    for (var i = a; i < rows.length && tops[i] <= hi; i++) {
      var row = rows[i];
      keep.add(row.id);
      var el = this.shown.get(row.id);
      if (el && el.issRow !== row) { this.drop(row.id); el = null; } // same id, new content
      if (!el) {
        el = document.createElement("div");
        el.className = "vrow";
        el.style.position = "absolute";
        el.style.left = "0"; el.style.right = "0";
        el.style.height = row.height + "px";
        el.issRow = row;
        this.box.appendChild(el);
        this.shown.set(row.id, el);
        row.render(el);
      }
      el.style.top = tops[i] + "px";
    }
    var self = this;
    this.shown.forEach(function (el, id) { if (!keep.has(id)) self.drop(id); });
    this.listeners.forEach(function (fn) { fn(); });
  };

  VList.prototype.onShown = function (fn) { this.listeners.push(fn); };

  window.IssVList = VList;
})();
