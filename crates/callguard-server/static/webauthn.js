// Passkeys for Callguard's pages: registration on "My account", sign-in on the second-factor
// page. Our own code, served from this origin only (the CSP allows no inline or foreign script).
"use strict";

(function () {
  function b64urlToBytes(s) {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
  function bytesToB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }
  async function api(path, body) {
    const resp = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.detail || "the server refused the request");
    return data;
  }

  async function register() {
    const status = document.getElementById("passkey-status");
    const name = (document.getElementById("passkey-name") || {}).value || "passkey";
    try {
      status.textContent = "Follow your browser's prompt…";
      const start = await api("/api/v1/me/passkeys/registration", {});
      const pk = start.options.publicKey;
      pk.challenge = b64urlToBytes(pk.challenge);
      pk.user.id = b64urlToBytes(pk.user.id);
      (pk.excludeCredentials || []).forEach((c) => (c.id = b64urlToBytes(c.id)));
      const cred = await navigator.credentials.create({ publicKey: pk });
      const credential = {
        id: cred.id,
        rawId: bytesToB64url(cred.rawId),
        type: cred.type,
        response: {
          attestationObject: bytesToB64url(cred.response.attestationObject),
          clientDataJSON: bytesToB64url(cred.response.clientDataJSON),
        },
        extensions: cred.getClientExtensionResults(),
      };
      await api("/api/v1/me/passkeys", { challenge: start.challenge, name: name, credential: credential });
      status.textContent = "Passkey added.";
      window.location.reload();
    } catch (e) {
      status.textContent = "Could not add the passkey: " + e.message;
    }
  }

  async function signIn() {
    const form = document.getElementById("webauthn-form");
    const el = document.getElementById("webauthn-options");
    if (!form || !el) return;
    const options = JSON.parse(el.textContent);
    const pk = options.publicKey;
    pk.challenge = b64urlToBytes(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => (c.id = b64urlToBytes(c.id)));
    const cred = await navigator.credentials.get({ publicKey: pk });
    const assertion = {
      id: cred.id,
      rawId: bytesToB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: bytesToB64url(cred.response.authenticatorData),
        clientDataJSON: bytesToB64url(cred.response.clientDataJSON),
        signature: bytesToB64url(cred.response.signature),
        userHandle: cred.response.userHandle ? bytesToB64url(cred.response.userHandle) : null,
      },
      extensions: cred.getClientExtensionResults(),
    };
    form.elements.code.value = JSON.stringify(assertion);
    form.submit();
  }

  document.addEventListener("DOMContentLoaded", function () {
    const reg = document.getElementById("passkey-register");
    if (reg) reg.addEventListener("click", register);
    const sign = document.getElementById("passkey-signin");
    if (sign) sign.addEventListener("click", () => signIn().catch(() => {}));
  });
})();
