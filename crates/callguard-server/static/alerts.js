// Live alert feed: server-sent events from /api/v1/alerts/stream add and update rows without a
// reload. Rows are built with DOM calls and textContent only (never HTML from the wire).
"use strict";

(function () {
  function csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }

  function actionForm(alert) {
    const form = document.createElement("form");
    form.method = "post";
    form.action = "/alerts/" + encodeURIComponent(alert.id) + "/handle";
    form.className = "row compact";
    const token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrf";
    token.value = csrf();
    const comment = document.createElement("input");
    comment.name = "comment";
    comment.placeholder = "comment (required)";
    comment.required = true;
    comment.maxLength = 1000;
    form.append(token, comment);
    const buttons = alert.status === "open" ? [["acknowledged", "Acknowledge"], ["resolved", "Resolve"]] : [["resolved", "Resolve"]];
    for (const [value, label] of buttons) {
      const b = document.createElement("button");
      b.type = "submit";
      b.name = "to";
      b.value = value;
      b.textContent = label;
      form.append(b);
    }
    return form;
  }

  // Staff by username, as the page's own rows show them (accounts known when the page loaded).
  function named(text) {
    const table = document.querySelector('[data-testid="alerts"]');
    let names = {};
    try { names = JSON.parse((table && table.dataset.names) || "{}"); } catch (e) { names = {}; }
    return String(text).replace(/user:[0-9a-f-]{36}/g, (m) => names[m] || m);
  }

  function render(alert) {
    const tr = document.createElement("tr");
    tr.dataset.testid = "alert-row";
    tr.setAttribute("data-testid", "alert-row");
    tr.dataset.alertId = alert.id;
    tr.dataset.seq = String(alert.seq);
    tr.className = "sev-" + alert.severity + " fresh";
    for (const text of [alert.raised_at, alert.severity, alert.rule, named(alert.summary)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const status = document.createElement("td");
    status.className = "status";
    status.textContent = alert.status;
    const act = document.createElement("td");
    if (alert.status !== "resolved") act.append(actionForm(alert));
    tr.append(status, act);
    return tr;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const body = document.getElementById("alert-rows");
    const live = document.getElementById("live-status");
    if (!body || typeof EventSource === "undefined") return;
    const source = new EventSource("/api/v1/alerts/stream");
    source.onopen = () => (live.textContent = "live");
    source.onerror = () => (live.textContent = "reconnecting…");
    source.addEventListener("alert", function (ev) {
      const alert = JSON.parse(ev.data);
      const existing = body.querySelector('tr[data-alert-id="' + CSS.escape(alert.id) + '"]');
      const row = render(alert);
      if (existing) existing.replaceWith(row);
      else body.prepend(row);
    });
  });
})();
