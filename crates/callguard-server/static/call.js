// The call screen and the desk: the call timer, local times with the UTC value on hover, and
// one-key shortcuts (documented on each page). No data leaves the page.
(function () {
  "use strict";
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    document.querySelectorAll("[data-timer]").forEach(function (el) {
      var start = Date.parse(el.getAttribute("data-timer"));
      if (isNaN(start)) return;
      var s = Math.max(0, Math.floor((Date.now() - start) / 1000));
      var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
      el.textContent = (h ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
    });
  }
  // The viewer's time zone: the one chosen for this account on this browser, else the browser's.
  function zoneKey() {
    var who = document.querySelector("[data-user]");
    return who ? "callguard-tz:" + who.getAttribute("data-user") : null;
  }
  function zone() {
    var key = zoneKey();
    try { return (key && window.localStorage.getItem(key)) || undefined; } catch (e) { return undefined; }
  }
  function localTimes() {
    var tz = zone();
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var utc = el.getAttribute("datetime");
      var t = Date.parse(utc);
      if (!utc || isNaN(t)) return;
      el.title = utc + " (UTC)";
      var opts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" };
      try {
        el.textContent = new Date(t).toLocaleString(undefined, Object.assign({ timeZone: tz }, opts));
      } catch (e) {
        el.textContent = new Date(t).toLocaleString(undefined, opts);
      }
    });
  }
  function zoneChooser() {
    var select = document.getElementById("tz-select");
    var key = zoneKey();
    if (!select || !key || !Intl.supportedValuesOf) return;
    var current = zone();
    Intl.supportedValuesOf("timeZone").forEach(function (z) {
      var o = document.createElement("option");
      o.value = z;
      o.textContent = z.replace(/_/g, " ");
      if (z === current) o.selected = true;
      select.appendChild(o);
    });
    select.addEventListener("change", function () {
      try {
        if (select.value) window.localStorage.setItem(key, select.value);
        else window.localStorage.removeItem(key);
      } catch (e) { /* storage refused: the browser's zone stays */ }
      localTimes();
    });
  }
  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    var key = e.key === "/" ? "/" : e.key.toLowerCase();
    var focus = document.querySelector('[data-shortcut-focus="' + key + '"]');
    if (focus) { e.preventDefault(); focus.focus(); return; }
    var click = document.querySelector('[data-shortcut="' + key + '"]');
    if (click) { e.preventDefault(); click.click(); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    zoneChooser();
    localTimes();
    tick();
    if (document.querySelector("[data-timer]")) setInterval(tick, 1000);
  });
})();
