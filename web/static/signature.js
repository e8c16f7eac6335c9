/* Edit Signature: a high-DPI signature pad (pointer events: mouse, pen, touch) with Clear and Save. */
(function () {
  "use strict";
  var canvas = document.querySelector("[data-signature-pad]");
  if (!canvas || !window.SignaturePad) return;
  var status = document.querySelector("[data-pad-status]");
  var saveButton = document.querySelector("[data-pad-save]");
  var pad = new window.SignaturePad(canvas, {
    minWidth: 0.9,
    maxWidth: 2.8,
    penColor: "#0d1b3e",
    velocityFilterWeight: 0.7,
  });
  var typed = false;
  var lastWidth = 0;

  // Draw in device pixels so strokes stay sharp on high-DPI screens; keep the drawing on rotation.
  function resize() {
    if (canvas.offsetWidth === lastWidth) return;  // phones fire resize when the address bar moves
    lastWidth = canvas.offsetWidth;
    var ratio = Math.max(window.devicePixelRatio || 1, 1);
    var strokes = pad.toData();
    canvas.width = canvas.offsetWidth * ratio;
    canvas.height = canvas.offsetHeight * ratio;
    canvas.getContext("2d").scale(ratio, ratio);
    pad.clear();
    if (strokes.length) pad.fromData(strokes);
    typed = false;
  }
  window.addEventListener("resize", resize);
  resize();

  pad.addEventListener("beginStroke", function () { say("", ""); });

  function say(text, kind) {
    status.textContent = text;
    status.className = "pad-status" + (kind ? " " + kind : "");
  }

  document.querySelector("[data-pad-clear]").addEventListener("click", function () {
    pad.clear();
    typed = false;
    say("Cleared. Draw your signature again.", "");
  });

  var typeButton = document.querySelector("[data-pad-type]");
  if (typeButton) {
    typeButton.addEventListener("click", function () {
      var name = document.getElementById("typed-name").value.trim();
      if (!name) { say("Type your name first.", "error"); return; }
      pad.clear();
      var ctx = canvas.getContext("2d");
      var size = Math.min(48, Math.max(24, canvas.offsetWidth / (name.length * 0.55)));
      ctx.font = "italic " + size + 'px "Segoe Script", "Brush Script MT", "URW Chancery L", cursive';
      ctx.fillStyle = "#0d1b3e";
      ctx.fillText(name, 24, canvas.offsetHeight - 64);
      typed = true;
      say("Your typed name is in the box. Press Save to use it.", "");
    });
  }

  saveButton.addEventListener("click", function () {
    if (pad.isEmpty() && !typed) { say("Draw your signature first.", "error"); return; }
    saveButton.disabled = true;
    say("Saving…", "");
    canvas.toBlob(function (blob) {
      var data = new FormData();
      data.append("image", blob, "signature.png");
      fetch(saveButton.getAttribute("data-save-url"), {
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
            var current = document.querySelector("[data-current-signature]");
            if (current) current.src = "/portal/signature.png?v=" + Date.now();
          } else {
            say(result.body.detail || "The signature could not be saved.", "error");
          }
        })
        .catch(function () { say("The signature could not be saved. Check your connection.", "error"); })
        .finally(function () { saveButton.disabled = false; });
    }, "image/png");
  });
})();
