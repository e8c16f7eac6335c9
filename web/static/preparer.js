/* Portico preparer workspace: small enhancements on server-rendered pages. No inline scripts (CSP). */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  // Show the chosen file's name next to its "Choose …" button (the input itself is visually hidden).
  function watchFileInput(input) {
    var row = input.closest("[data-doc-row], .file-pick");
    var out = row ? row.querySelector("[data-file-chosen]") : null;
    if (!out) return;
    input.addEventListener("change", function () {
      var names = Array.prototype.map.call(input.files || [], function (f) { return f.name; });
      out.textContent = names.length ? names.join(", ") : "No file chosen";
      out.classList.toggle("muted", names.length === 0);
    });
  }

  function setUpDocumentRows() {
    var form = document.querySelector("[data-document-form]");
    if (!form) return;
    var list = form.querySelector("[data-doc-rows]");
    var template = form.querySelector("[data-doc-template]");
    var add = form.querySelector("[data-add-document]");
    if (!list || !template || !add) return;
    add.hidden = false;
    add.addEventListener("click", function () {
      var index = list.querySelectorAll("[data-doc-row]").length;
      if (index >= 20) { add.disabled = true; return; }
      var row = template.content.firstElementChild.cloneNode(true);
      var input = row.querySelector("input[type=file]");
      var labels = row.querySelectorAll("label");
      var select = row.querySelector("select");
      input.id = "file-" + index; input.name = "file-" + index;
      labels[0].htmlFor = input.id;
      select.id = "who-" + index; select.name = "who-" + index;
      labels[1].htmlFor = select.id;
      row.querySelector("[data-places-input]").name = "boxes-" + index;
      row.querySelector("[data-signature-page]").name = "signature_page-" + index;
      row.querySelector("[data-placement]").setAttribute("aria-label", "Signature places of document " + (index + 1));
      row.querySelector(".doc-number").textContent = "Document " + (index + 1);
      list.appendChild(row);
      watchFileInput(input);
      input.focus();
    });
  }

  // A joint return's 8879 or return sent with one signer: ask first (the server asks too, without script).
  // The pattern is services.preparer_engagements.NAMES_BOTH_SPOUSES.
  var NAMES_BOTH_SPOUSES = /8879|1040|return/i;

  function setUpOneSignerCheck() {
    var form = document.querySelector("[data-document-form]");
    var box = form ? form.querySelector("[data-one-signer]") : null;
    if (!box) return;
    var confirmed = box.querySelector("[data-one-signer-confirmed]");
    form.addEventListener("submit", function (event) {
      var names = [];
      form.querySelectorAll("[data-doc-row]").forEach(function (row) {
        var input = row.querySelector("input[type=file]");
        var who = row.querySelector("select");
        var file = input && input.files && input.files[0];
        if (file && who && (who.value === "taxpayer" || who.value === "spouse") && NAMES_BOTH_SPOUSES.test(file.name)) {
          names.push(file.name);
        }
      });
      if (!names.length || confirmed.checked) return;
      event.preventDefault();
      box.querySelector("[data-one-signer-names]").textContent = names.join(", ");
      box.hidden = false;
      box.setAttribute("role", "alert");
      confirmed.focus();
    });
  }

  // The send form waits for the portal; the live poll brings #send-gate back with data-send-ready.
  function syncSendForm() {
    var gate = document.querySelector("[data-send-gate]");
    var fieldset = document.querySelector("[data-send-fieldset]");
    if (gate && fieldset) fieldset.disabled = gate.getAttribute("data-send-ready") !== "1";
  }

  // A notice after an action shows once: reloading the page (or coming back to it) does not repeat it.
  function forgetNotice() {
    if (!document.querySelector(".notice") || !window.history.replaceState) return;
    var url = new URL(window.location.href);
    if (!url.searchParams.has("m")) return;
    url.searchParams.delete("m");
    window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  }

  // Disclosure buttons (Customer Portal, the spouse's fields, Menu, Cancel): a real button whose
  // aria-expanded says whether the section it controls is open; Escape closes the menu again.
  function setUpDisclosure(button) {
    var panel = document.getElementById(button.getAttribute("aria-controls"));
    if (!panel) return;
    function show(open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      panel.hidden = !open;
    }
    button.addEventListener("click", function () {
      show(button.getAttribute("aria-expanded") !== "true");
    });
    if (panel.tagName !== "NAV") return;
    [button, panel].forEach(function (el) {
      el.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && !panel.hidden) { show(false); button.focus(); }
      });
    });
  }

  ready(function () {
    document.querySelectorAll("[data-disclosure]").forEach(setUpDisclosure);
    document.querySelectorAll("[data-file-input]").forEach(watchFileInput);
    setUpDocumentRows();
    setUpOneSignerCheck();
    forgetNotice();
    document.body.addEventListener("htmx:oobAfterSwap", syncSendForm);
    document.body.addEventListener("htmx:afterSettle", syncSendForm);
  });
})();
