/* isstreamer collector dashboard: what every page shares (window.Iss) and the bucket list.
   The bucket page is bucket.js, its charts charts.js, its long lists vlist.js. */
(function () {
  "use strict";

  var KEY_STORE = "isstreamer.accessKey";
  var LIST_REFRESH_MS = 5000;

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
  function NotFound() { this.message = "no such bucket"; }

  function api(path) {
    var headers = {};
    var key = sessionStorage.getItem(KEY_STORE);
    if (key) headers["X-IS-AccessKey"] = key;
    return fetch(path, { headers: headers, cache: "no-store" }).then(function (res) {
      if (res.status === 401) throw new AuthError();
      if (res.status === 404) throw new NotFound();
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
    } else if (err instanceof NotFound) {
      setStatus("error", "no such bucket");
    } else {
      setStatus("error", "offline, retrying");
      if (window.console) console.error(err);
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
  function withUnit(text, unit) { return unit ? window.IssUnits.withUnit(text, unit) : text; }
  function valueNode(v, unit) {
    if (typeof v === "boolean") return el("span", "pill " + (v ? "on" : "off"), String(v));
    if (typeof v === "number") return el("span", "num", withUnit(fmtNumber(v), unit));
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

  window.Iss = {
    $: $, el: el, api: api, every: every, setStatus: setStatus, failed: failed,
    fmtNumber: fmtNumber, fmtValue: fmtValue, fmtAgo: fmtAgo, fmtTime: fmtTime, fmtTick: fmtTick,
    bucketPath: bucketPath, NotFound: NotFound, valueNode: valueNode, withUnit: withUnit,
  };

  adoptKeyFromUrl();
  if (document.body.dataset.page === "buckets") bucketsPage();
})();
