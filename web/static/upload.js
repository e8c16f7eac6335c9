/* My Files: upload each chosen or dropped file on its own request, so each gets its own progress bar. */
(function () {
  "use strict";
  var form = document.querySelector("[data-upload-form]");
  if (!form) return;
  var input = form.querySelector('input[type="file"]');
  var zone = form.querySelector("[data-drop-zone]");
  var list = document.querySelector("[data-upload-list]");

  input.addEventListener("change", function () {
    uploadAll(input.files);
    input.value = "";
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    uploadAll(input.files);
  });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    if (event.dataTransfer) uploadAll(event.dataTransfer.files);
  });
  // The whole area opens the file chooser, not only its "Browse Files" label (which does so itself).
  zone.addEventListener("click", function (event) {
    if (!event.target.closest("label, input")) input.click();
  });

  function uploadAll(files) {
    var uploads = Array.prototype.map.call(files || [], uploadOne);
    if (!uploads.length) return;
    say(uploads.length === 1 ? "Uploading 1 file…" : "Uploading " + uploads.length + " files…");
    Promise.all(uploads).then(function (outcomes) {
      refreshList();
      var done = outcomes.filter(function (o) { return o.ok; }).map(function (o) { return o.name; });
      var failed = outcomes.filter(function (o) { return !o.ok; }).map(function (o) { return o.message; });
      say((done.length ? "Uploaded " + done.join(", ") + ". " : "") + failed.join(" "));
    });
  }

  // Through the page's one live region (portal.js), which screen readers already listen to.
  function say(text) {
    if (window.Portico && window.Portico.announce) window.Portico.announce(text.trim());
  }

  function uploadOne(file) {
    var item = document.createElement("li");
    var name = document.createElement("p");
    name.className = "name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload progress for " + file.name);
    var state = document.createElement("p");
    state.className = "state";
    state.textContent = "Uploading " + file.name + "…";
    item.append(name, bar, state);
    list.appendChild(item);

    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("action"));
      xhr.setRequestHeader("X-CSRF-Token", window.Portico.csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) {
          bar.value = 100;
          item.classList.add("done");
          state.textContent = "Uploaded " + file.name;
          resolve({ ok: true, name: file.name });
        } else {
          resolve(fail(messageFrom(xhr) || "The upload of " + file.name + " failed."));
        }
      });
      xhr.addEventListener("error", function () {
        resolve(fail("The upload of " + file.name + " failed. Check your connection and try again."));
      });
      var data = new FormData();
      data.append("files", file, file.name);
      var keepPrivate = form.querySelector('input[name="private"]');
      if (keepPrivate && keepPrivate.checked) data.append("private", "on");
      xhr.send(data);
    });

    function fail(message) {
      item.classList.add("failed");
      bar.remove();
      state.textContent = message;
      return { ok: false, name: file.name, message: message };
    }
  }

  function messageFrom(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      return typeof body.detail === "string" ? body.detail : "";
    } catch (e) {
      return "";
    }
  }

  function refreshList() {
    if (window.htmx) window.htmx.ajax("GET", "/portal/files/list", { target: "#file-list", swap: "innerHTML" });
  }
})();
