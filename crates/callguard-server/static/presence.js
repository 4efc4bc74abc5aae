// The desk's queued-call panel, live: my state and time in it, and a call ringing me, from the
// server-sent events of /api/v1/agents/me/stream. When I answer on my softphone the desk opens
// the call. Text goes in with textContent only (never HTML from the wire).
"use strict";

(function () {
  const LABELS = {
    logged_out: "Signed out", ready: "Ready", not_ready: "Not ready",
    ringing: "Ringing", on_call: "On a call", wrap_up: "Wrap-up",
  };

  function elapsed(since) {
    const t = Date.parse(since);
    if (Number.isNaN(t)) return "";
    const s = Math.max(0, Math.floor((Date.now() - t) / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    return (h > 0 ? h + ":" + two(m) : String(m)) + ":" + two(r);
  }

  function showOffer(region, offer) {
    region.replaceChildren();
    if (!offer) return;
    const box = document.createElement("div");
    box.className = "notice offer";
    box.setAttribute("data-testid", "call-offer");
    const parts = [
      ["strong", null, "Incoming call"], ["span", null, " — queue "], ["span", "offer-queue", offer.queue],
      ["span", null, ", caller "], ["span", "offer-caller", offer.caller_id || "withheld"],
      ["span", null, ", menu "], ["span", "offer-ivr", (offer.ivr_path || []).join(" › ")],
      ["span", null, ", verified to level "], ["span", "offer-level", String(offer.level)],
    ];
    if (offer.screen_pop) parts.push(["span", null, ", customer "], ["span", "offer-customer", offer.screen_pop]);
    parts.push(["span", null, ". Answer on your softphone."]);
    for (const [tag, id, text] of parts) {
      const el = document.createElement(tag);
      if (id) el.setAttribute("data-testid", id);
      el.textContent = text;
      box.append(el);
    }
    region.append(box);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const panel = document.getElementById("presence");
    if (!panel) return;
    const label = document.getElementById("agent-state");
    const reason = document.getElementById("agent-reason");
    const timer = document.getElementById("time-in-state");
    const region = document.getElementById("call-offer");
    const tick = () => { timer.textContent = elapsed(panel.dataset.since); };
    tick();
    setInterval(tick, 1000);
    if (typeof EventSource === "undefined") return;
    const source = new EventSource("/api/v1/agents/me/stream");
    source.addEventListener("state", function (ev) {
      const a = JSON.parse(ev.data);
      if (a.state === "on_call" && a.interaction_id) {
        window.location.assign("/desk/interactions/" + encodeURIComponent(a.interaction_id));
        return;
      }
      panel.dataset.state = a.state;
      panel.dataset.since = a.since;
      label.textContent = LABELS[a.state] || a.state;
      reason.textContent = a.reason ? "(" + a.reason.replace(/_/g, " ") + ")" : "";
      for (const form of panel.querySelectorAll("[data-show-unless]")) {
        form.hidden = form.dataset.showUnless === a.state;
      }
      if (a.state !== "ringing") showOffer(region, null);
      tick();
    });
    source.addEventListener("offer", function (ev) {
      showOffer(region, JSON.parse(ev.data));
    });
  });
})();
