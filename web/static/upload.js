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

  function uploadAll(files) {
    var uploads = Array.prototype.map.call(files || [], uploadOne);
    if (uploads.length) Promise.all(uploads).then(refreshList);
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
        } else {
          fail(messageFrom(xhr) || "The upload of " + file.name + " failed.");
        }
        resolve();
      });
      xhr.addEventListener("error", function () {
        fail("The upload of " + file.name + " failed. Check your connection and try again.");
        resolve();
      });
      var data = new FormData();
      data.append("files", file, file.name);
      xhr.send(data);
    });

    function fail(message) {
      item.classList.add("failed");
      bar.remove();
      state.setAttribute("role", "alert");
      state.textContent = message;
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
