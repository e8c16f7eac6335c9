/* Edit Signature: three ways to make the signature on file. Draw: a high-DPI signature pad (pointer events:
   mouse, pen, touch). Type: the name previewed in the handwriting font the server writes it with. Upload: a
   picture the server cleans. The type and upload forms also work without JavaScript (a plain post). */
(function () {
  "use strict";
  var status = document.querySelector("[data-pad-status]");
  var figure = document.querySelector("[data-current-figure]");

  function say(text, kind) {
    status.textContent = text;
    status.className = "pad-status" + (kind ? " " + kind : "");
  }

  function showSaved(method) {
    var image = document.querySelector("[data-current-signature]");
    image.src = "/portal/signature.png?v=" + Date.now();
    document.querySelector("[data-current-method]").textContent = "(" + method + ")";
    figure.hidden = false;
  }

  function send(data, button) {
    button.disabled = true;
    say("Saving…", "");
    return fetch("/portal/signature", {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": window.Portico.csrfToken(), Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        if (result.ok) {
          say(result.body.message || "Signature saved", "ok");
          showSaved(result.body.method || data.get("method"));
        } else {
          say(result.body.detail || "The signature could not be saved.", "error");
        }
      })
      .catch(function () { say("The signature could not be saved. Check your connection.", "error"); })
      .finally(function () { button.disabled = false; });
  }

  // ---- choosing a way: one panel at a time
  var panels = document.querySelectorAll("[data-method-panel]");
  function choose(method) {
    panels.forEach(function (panel) { panel.hidden = panel.getAttribute("data-method-panel") !== method; });
    if (method === "drawn") resize();
    say("", "");
  }
  document.querySelectorAll("[data-sign-methods] input").forEach(function (radio) {
    radio.addEventListener("change", function () { if (radio.checked) choose(radio.value); });
  });

  // ---- type and upload: the forms, sent with fetch to stay on the page
  var typed = document.querySelector("[data-typed-name]");
  var preview = document.querySelector("[data-typed-preview]");
  if (typed && preview) {
    typed.addEventListener("input", function () { preview.textContent = typed.value; });
  }
  document.querySelectorAll("[data-method-form]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = new FormData(form);
      if (data.get("method") === "typed" && !String(data.get("typed_name")).trim()) {
        say("Type your name first.", "error");
        return;
      }
      if (data.get("method") === "uploaded" && !form.querySelector("input[type=file]").files.length) {
        say("Choose a picture of your signature.", "error");
        return;
      }
      send(data, form.querySelector("button[type=submit]"));
    });
  });

  // ---- draw
  var canvas = document.querySelector("[data-signature-pad]");
  var pad = null;
  var lastWidth = 0;
  // Draw in device pixels so strokes stay sharp on high-DPI screens; keep the drawing on rotation.
  function resize() {
    if (!pad || !canvas.offsetWidth || canvas.offsetWidth === lastWidth) return;  // hidden, or the address bar
    lastWidth = canvas.offsetWidth;
    var ratio = Math.max(window.devicePixelRatio || 1, 1);
    var strokes = pad.toData();
    canvas.width = canvas.offsetWidth * ratio;
    canvas.height = canvas.offsetHeight * ratio;
    canvas.getContext("2d").scale(ratio, ratio);
    pad.clear();
    if (strokes.length) pad.fromData(strokes);
  }
  if (canvas && window.SignaturePad) {
    pad = new window.SignaturePad(canvas, {
      minWidth: 0.9,
      maxWidth: 2.8,
      penColor: "#0d1b3e",
      velocityFilterWeight: 0.7,
    });
    window.addEventListener("resize", resize);
    pad.addEventListener("beginStroke", function () { say("", ""); });
    document.querySelector("[data-pad-clear]").addEventListener("click", function () {
      pad.clear();
      say("Cleared. Draw your signature again.", "");
    });
    var saveButton = document.querySelector("[data-pad-save]");
    saveButton.addEventListener("click", function () {
      if (pad.isEmpty()) { say("Draw your signature first.", "error"); return; }
      canvas.toBlob(function (blob) {
        var data = new FormData();
        data.append("method", "drawn");
        data.append("image", blob, "signature.png");
        send(data, saveButton);
      }, "image/png");
    });
  }

  var checked = document.querySelector("[data-sign-methods] input:checked");
  choose(checked ? checked.value : "drawn");
})();
