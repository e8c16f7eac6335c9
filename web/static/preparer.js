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
      row.querySelector(".doc-number").textContent = "Document " + (index + 1);
      list.appendChild(row);
      watchFileInput(input);
      input.focus();
    });
  }

  ready(function () {
    document.querySelectorAll("[data-file-input]").forEach(watchFileInput);
    setUpDocumentRows();
  });
})();
