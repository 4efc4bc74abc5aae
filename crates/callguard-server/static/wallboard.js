// The wallboard, live: on each `board` event of /api/v1/queues/stream it fetches the panel the
// server draws (tables and SVG charts; no HTML from the event itself) and swaps it in. One
// fetch at a time; events that arrive meanwhile make one more fetch after it.
"use strict";

(function () {
  document.addEventListener("DOMContentLoaded", function () {
    const panel = document.getElementById("wallboard-panel");
    const live = document.getElementById("live-status");
    const summary = document.getElementById("wallboard-summary");
    if (!panel || typeof EventSource === "undefined") return;
    let busy = false, again = false, seen = 0;

    async function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      try {
        do {
          again = false;
          const resp = await fetch("/wallboard/panel", { credentials: "same-origin", cache: "no-store" });
          if (!resp.ok) { live.textContent = "not updated (" + resp.status + ")"; break; }
          const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
          panel.replaceChildren(...Array.from(doc.body.childNodes));
        } while (again);
      } catch (e) {
        live.textContent = "reconnecting…";
      } finally {
        busy = false;
        panel.dataset.updates = String(++seen);
      }
    }

    // Time in state counts up between events; while calls wait, their longest wait is redrawn.
    const two = (n) => String(n).padStart(2, "0");
    setInterval(function () {
      for (const el of panel.querySelectorAll("[data-since]")) {
        const t = Date.parse(el.dataset.since);
        if (Number.isNaN(t)) continue;
        const s = Math.max(0, Math.floor((Date.now() - t) / 1000));
        el.textContent = Math.floor(s / 60) + ":" + two(s % 60);
      }
    }, 1000);
    setInterval(function () {
      const waiting = Array.from(panel.querySelectorAll('[data-testid="queue-waiting"]')).some((c) => c.textContent.trim() !== "0");
      if (waiting && !document.hidden) refresh();
    }, 5000);

    const source = new EventSource("/api/v1/queues/stream");
    source.onopen = () => (live.textContent = "live");
    source.onerror = () => (live.textContent = "reconnecting…");
    source.addEventListener("board", function (ev) {
      const b = JSON.parse(ev.data);
      const waiting = (b.queues || []).reduce((n, q) => n + q.waiting, 0);
      const ready = (b.agents || []).filter((a) => a.state === "ready").length;
      summary.textContent = waiting + " calls waiting, " + ready + " agents ready.";
      refresh();
    });
  });
})();
