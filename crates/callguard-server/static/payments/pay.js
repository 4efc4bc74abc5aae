// The payment page's only script (see SCRIPT_INVENTORY in features/payments/pages.rs): it keeps
// the card number readable while typed (groups of four) and stops a second submit of the form.
// It sends nothing anywhere: the card goes to the server by the form's own POST.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("pay-form");
  if (!form) { return; }
  var number = document.getElementById("number");
  number.addEventListener("input", function () {
    var digits = number.value.replace(/\D/g, "").slice(0, 19);
    var grouped = digits.replace(/(\d{4})(?=\d)/g, "$1 ");
    if (grouped !== number.value) { number.value = grouped; }
  });
  form.addEventListener("submit", function (e) {
    if (form.dataset.sent === "1") { e.preventDefault(); return; }
    form.dataset.sent = "1";
    var button = document.getElementById("pay-button");
    button.disabled = true;
    button.textContent = "Paying…";
  });
});
