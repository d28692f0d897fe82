/* Units from key names, as isstreamer metrics and most sensor scripts write them
   (docs/collector.md lists the rules). window.IssUnits.unitOf(key) -> "%", "MiB", ... or "". */
(function () {
  "use strict";

  // Checked in order, first match wins: longer suffixes before the shorter ones they end with.
  var SUFFIXES = [
    ["_kib_per_s", "KiB/s"], ["_mib_per_s", "MiB/s"], ["_gib_per_s", "GiB/s"],
    ["_bytes_per_s", "B/s"], ["_kbps", "kbit/s"], ["_mbps", "Mbit/s"],
    ["_per_s", "/s"], ["_per_min", "/min"], ["_per_h", "/h"],
    ["_percent", "%"], ["_pct", "%"],
    ["_kib", "KiB"], ["_mib", "MiB"], ["_gib", "GiB"], ["_tib", "TiB"], ["_bytes", "B"],
    ["_celsius", "°C"], ["_temp_c", "°C"], ["_fahrenheit", "°F"], ["_temp_f", "°F"],
    ["_ms", "ms"], ["_us", "µs"], ["_seconds", "s"], ["_s", "s"], ["_min", "min"],
    ["_hours", "h"], ["_days", "d"],
    ["_mhz", "MHz"], ["_ghz", "GHz"], ["_hz", "Hz"], ["_rpm", "rpm"],
    ["_mv", "mV"], ["_volts", "V"], ["_v", "V"], ["_ma", "mA"], ["_amps", "A"],
    ["_mw", "mW"], ["_watts", "W"], ["_w", "W"], ["_kwh", "kWh"], ["_wh", "Wh"],
    ["_hpa", "hPa"], ["_pa", "Pa"], ["_lux", "lx"], ["_ppm", "ppm"], ["_db", "dB"],
    ["_dbm", "dBm"], ["_m", "m"], ["_mm", "mm"], ["_cm", "cm"], ["_km", "km"],
    ["_c", "°C"], ["_f", "°F"],
  ];
  // Whole-name rules: temperatures (temp_cpu, cpu_temp), humidity, and metrics' cpu_* percent.
  var PATTERNS = [
    [/(^|_)temp(erature)?(_|$)/, "°C"],
    [/(^|_)humidity(_|$)/, "%"],
    [/^cpu_(total|\d+)$/, "%"],
  ];

  function unitOf(key) {
    var k = String(key).toLowerCase();
    for (var i = 0; i < SUFFIXES.length; i++) {
      var s = SUFFIXES[i][0];
      if (k.length > s.length && k.slice(-s.length) === s) return SUFFIXES[i][1];
    }
    for (var j = 0; j < PATTERNS.length; j++) {
      if (PATTERNS[j][0].test(k)) return PATTERNS[j][1];
    }
    return "";
  }

  // "%", "°C" and "/s" sit on the number; words get a narrow space.
  function withUnit(text, unit) {
    if (!unit) return text;
    var c = unit.charAt(0);
    return c === "%" || c === "°" || c === "/" ? text + unit : text + "\u202f" + unit;
  }

  window.IssUnits = { unitOf: unitOf, withUnit: withUnit };
})();
