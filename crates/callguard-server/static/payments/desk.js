// The call screen's payment panel: server-sent events from /api/v1/payments/stream keep each
// payment's row current without a reload. Rows are built with textContent only.
"use strict";

(function () {
  // A keypad capture in progress: "card number: digit 7 of 16 · Visa", then each field's
  // result. Counts only: the server never sends a digit.
  function keypad(k) {
    if (!k) return "";
    const parts = [];
    if (k.field) parts.push(k.field + ": digit " + k.digit + (k.of ? " of " + k.of : ""));
    if (k.brand) parts.push(k.brand);
    return parts.concat(k.results || []).join(" · ");
  }

  function row(p) {
    const tr = document.createElement("tr");
    tr.dataset.testid = "payment-row";
    tr.dataset.id = p.id;
    tr.dataset.status = p.status;
    const card = p.brand ? p.brand + " •••• " + (p.last4 || "") : "";
    for (const text of [p.amount, p.description, p.status.replace("_", " "), card, p.message || keypad(p.keypad)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    tr.children[2].dataset.testid = "payment-status";
    tr.children[4].dataset.testid = "payment-note";
    const action = keypadAction(p);
    if (action) tr.children[4].append(action);
    return tr;
  }

  // A keypad payment on the call: "Take card payment by keypad" while it waits, "Cancel card
  // capture" while the caller types (features/incall). Plain forms with the page's CSRF token.
  function keypadAction(p) {
    const panel = document.getElementById("payments");
    if (p.method !== "keypad" || !panel) return null;
    let path, label, testid;
    if (p.status === "created") {
      path = "/keypad"; label = "Take card payment by keypad"; testid = "take-by-keypad";
    } else if (p.status === "capturing") {
      path = "/keypad/cancel"; label = "Cancel card capture"; testid = "cancel-keypad";
    } else {
      return null;
    }
    const form = document.createElement("form");
    form.method = "post";
    form.action = "/desk/payments/" + encodeURIComponent(p.id) + path;
    for (const [name, value] of [["csrf", panel.dataset.csrf], ["interaction", panel.dataset.interaction]]) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value || "";
      form.append(input);
    }
    const button = document.createElement("button");
    button.type = "submit";
    button.textContent = label;
    button.dataset.testid = testid;
    form.append(button);
    return form;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const panel = document.getElementById("payments");
    if (!panel || typeof EventSource === "undefined") return;
    const body = panel.querySelector("tbody");
    const url = "/api/v1/payments/stream?interaction_id=" + encodeURIComponent(panel.dataset.interaction);
    const source = new EventSource(url);
    source.addEventListener("payment", function (e) {
      const p = JSON.parse(e.data);
      const fresh = row(p);
      const old = body.querySelector('tr[data-id="' + CSS.escape(p.id) + '"]');
      if (old) { old.replaceWith(fresh); } else { body.prepend(fresh); }
    });
  });
})();
