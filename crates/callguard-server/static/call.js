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
  function localTimes() {
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var utc = el.getAttribute("datetime");
      var t = Date.parse(utc);
      if (!utc || isNaN(t)) return;
      el.title = utc + " (UTC)";
      el.textContent = new Date(t).toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
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
    localTimes();
    tick();
    if (document.querySelector("[data-timer]")) setInterval(tick, 1000);
  });
})();
