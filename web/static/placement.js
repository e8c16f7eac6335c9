/* Portico: where each signer signs. No inline scripts (CSP), no libraries.
 *
 * On the send form ([data-document-form]): when a PDF is chosen, its first pages come back from
 * /preparer/engagements/{id}/placements/preview as images with the places Portico would use; the
 * preparer drags, resizes, adds and removes places (mouse or keyboard) and the result goes into the
 * row's hidden boxes-{i} input. On a phone the places are shown, not edited.
 * In the portal ([data-placement-view]): the same drawing, read only, with the client's own places.
 *
 * A place is {role, page, x, y, width, height, kind} in PDF points from the page's lower left in
 * unrotated user space; a page is {number, left, bottom, width, height, rotation, image}, its image
 * showing the CropBox as a reader sees it (rotated). toImage/toPdf map between the two.
 */
(function () {
  "use strict";

  var KIND_NAMES = { signature: "Signature", date: "Date", initials: "Initials", name: "Printed name" };
  var CLIENT_NAMES = { signature: "Sign here", date: "Date", initials: "Initials", name: "Your name" };
  var ROLE_NAMES = { taxpayer: "Taxpayer", spouse: "Spouse" };
  var NEW_SIZE = { signature: [216, 32], date: [90, 18], initials: [48, 24], name: [180, 18] };
  var MIN_SIZE = { signature: [72, 24], date: [36, 12], initials: [24, 12], name: [60, 12] };
  var STEP = 2; // points per arrow key press (x5 with Alt)

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  // ---- geometry: PDF points <-> fractions of the shown page image (from its top left) ----

  function toImage(page, x, y) {
    var u = (x - page.left) / page.width, v = (page.bottom + page.height - y) / page.height;
    switch (page.rotation) {
      case 90: return [1 - v, u];
      case 180: return [1 - u, 1 - v];
      case 270: return [v, 1 - u];
      default: return [u, v];
    }
  }

  function toPdf(page, fx, fy) {
    var u = fx, v = fy;
    if (page.rotation === 90) { u = fy; v = 1 - fx; }
    else if (page.rotation === 180) { u = 1 - fx; v = 1 - fy; }
    else if (page.rotation === 270) { u = 1 - fy; v = fx; }
    return [page.left + u * page.width, page.bottom + page.height - v * page.height];
  }

  function onImage(page, place) {
    var a = toImage(page, place.x, place.y), b = toImage(page, place.x + place.width, place.y + place.height);
    return { left: Math.min(a[0], b[0]), top: Math.min(a[1], b[1]),
      width: Math.abs(a[0] - b[0]), height: Math.abs(a[1] - b[1]) };
  }

  function fromImage(page, rect) {
    var a = toPdf(page, rect.left, rect.top), b = toPdf(page, rect.left + rect.width, rect.top + rect.height);
    var round = function (n) { return Math.round(n * 10) / 10; };
    return { x: round(Math.min(a[0], b[0])), y: round(Math.min(a[1], b[1])),
      width: round(Math.abs(a[0] - b[0])), height: round(Math.abs(a[1] - b[1])) };
  }

  // The page's size as shown, in points (a page turned a quarter shows its height across).
  function shownSize(page) {
    var turned = page.rotation === 90 || page.rotation === 270;
    return turned ? [page.height, page.width] : [page.width, page.height];
  }

  function clampRect(rect) {
    rect.width = Math.min(rect.width, 1); rect.height = Math.min(rect.height, 1);
    rect.left = Math.max(0, Math.min(rect.left, 1 - rect.width));
    rect.top = Math.max(0, Math.min(rect.top, 1 - rect.height));
    return rect;
  }

  function placeName(place, forClient) {
    var kind = forClient ? CLIENT_NAMES[place.kind] : KIND_NAMES[place.kind];
    return forClient ? kind : ROLE_NAMES[place.role] + ": " + kind.toLowerCase();
  }

  // ---- drawing pages and places (shared by the editor and the read-only view) ----

  function drawPage(figure, page) {
    figure.className = "placement-page";
    var sheet = figure.querySelector(".placement-sheet");
    if (!sheet) {
      sheet = el("div", "placement-sheet");
      var img = el("img");
      img.src = page.image;
      img.alt = "Page " + page.number;
      sheet.appendChild(img);
      figure.appendChild(sheet);
      figure.appendChild(el("figcaption", "placement-caption", "Page " + page.number));
    }
    return sheet;
  }

  function positionPlace(node, page, place) {
    var rect = onImage(page, place);
    node.style.left = rect.left * 100 + "%";
    node.style.top = rect.top * 100 + "%";
    node.style.width = rect.width * 100 + "%";
    node.style.height = rect.height * 100 + "%";
    // A place near the page's right edge carries its label on its right, so the label stays on the page.
    node.classList.toggle("label-end", rect.left + rect.width > 0.7);
  }

  function placeNode(page, place, forClient) {
    var node = el("div", "place role-" + place.role + " kind-" + place.kind);
    node.appendChild(el("span", "place-label", placeName(place, forClient)));
    positionPlace(node, page, place);
    return node;
  }

  // ---- the read-only view (portal) ----

  function setUpView(view) {
    var places = JSON.parse(view.getAttribute("data-places") || "[]");
    view.querySelectorAll("[data-page]").forEach(function (figure) {
      var page = JSON.parse(figure.getAttribute("data-page"));
      var sheet = figure.querySelector(".placement-sheet");
      places.filter(function (p) { return p.page === page.number; }).forEach(function (place) {
        var node = placeNode(page, place, true);
        node.setAttribute("aria-hidden", "true"); // the page's text list says the same in words
        sheet.appendChild(node);
      });
    });
  }

  // ---- the editor (send form) ----

  function Editor(row, form) {
    this.row = row;
    this.form = form;
    this.panel = row.querySelector("[data-placement]");
    this.input = row.querySelector("[data-places-input]");
    this.appendPage = row.querySelector("[data-signature-page]");
    this.state = null; // {pages, places, roles, name}
    this.request = 0;
  }

  Editor.prototype.index = function () {
    var file = this.row.querySelector("input[type=file]");
    return file ? file.name.replace("file-", "") : "";
  };

  Editor.prototype.editable = function () {
    return !window.matchMedia("(max-width: 47.99rem)").matches;
  };

  Editor.prototype.clear = function () {
    this.state = null;
    this.request += 1;
    if (this.input) this.input.value = "";
    if (this.panel) { this.panel.hidden = true; this.panel.textContent = ""; }
  };

  Editor.prototype.load = function () {
    var file = this.row.querySelector("input[type=file]");
    var who = this.row.querySelector("select");
    var chosen = file && file.files && file.files[0];
    if (!chosen || !this.panel) { this.clear(); return; }
    var self = this, ticket = (this.request += 1);
    var body = new FormData();
    body.append("csrf_token", this.form.querySelector("input[name=csrf_token]").value);
    body.append("who", who ? who.value : "taxpayer");
    body.append("file", chosen, chosen.name);
    this.state = null;
    if (this.input) this.input.value = "";
    this.panel.hidden = false;
    this.panel.textContent = "";
    this.panel.appendChild(el("p", "hint", "Reading " + chosen.name + "…"));
    fetch(this.form.getAttribute("data-preview-url"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 413) {
          return { ok: false, data: { detail: "This PDF is too large to show here. Send it as it is: Portico finds the places by itself." } };
        }
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (answer) {
        if (ticket !== self.request) return;
        if (!answer.ok) { self.refused(answer.data.detail || "This PDF cannot be sent."); return; }
        self.state = { pages: answer.data.pages, places: answer.data.places, roles: answer.data.roles,
          name: answer.data.name, source: answer.data.source, template: answer.data.template };
        self.render(answer.data.notes || []);
      })
      .catch(function () {
        if (ticket !== self.request) return;
        self.refused("The places could not be shown just now. You can still send: Portico finds them by itself.");
      });
  };

  Editor.prototype.refused = function (message) {
    this.panel.textContent = "";
    var alert = el("p", "alert", message);
    alert.setAttribute("role", "alert");
    this.panel.appendChild(alert);
  };

  Editor.prototype.render = function (notes) {
    var self = this, state = this.state, editable = this.editable();
    var number = Number(this.index()) + 1;
    this.panel.textContent = "";
    var heading = el("h3", "placement-heading", "Review signature places");
    heading.appendChild(el("span", "visually-hidden", " (document " + number + ")"));
    heading.id = "placement-heading-" + this.index();
    this.panel.setAttribute("aria-labelledby", heading.id);
    this.panel.appendChild(heading);
    var source = state.source === "template" ? "Places from your firm's template “" + state.template + "”."
      : state.source === "found" ? "Places Portico found on the form. Check them before sending."
      : state.roles.length ? "Portico found no places on this form: add them, or append a signature page."
      : "Nobody signs this document.";
    this.panel.appendChild(el("p", "hint", state.name + " (document " + number + "): " + source));
    notes.forEach(function (note) { self.panel.appendChild(el("p", "hint", note)); });
    this.warning = el("div", "placement-warning");
    this.warning.hidden = true;
    this.panel.appendChild(this.warning);
    if (state.roles.length && editable) this.panel.appendChild(this.toolbar());
    if (state.roles.length && !editable) {
      this.panel.appendChild(el("p", "hint", "Open this page on a wider screen to move, add or remove places."));
    }
    if (editable && state.roles.length) {
      var help = el("p", "hint placement-help",
        "Drag a place or its corner. Keyboard: Tab to a place, arrow keys move it, Shift+arrow keys resize it, Delete removes it.");
      help.id = "placement-help-" + this.index();
      this.panel.appendChild(help);
    }
    this.status = el("p", "visually-hidden");
    this.status.setAttribute("role", "status");
    this.panel.appendChild(this.status);
    var pages = el("div", "placement-pages");
    this.sheets = {};
    state.pages.forEach(function (page) {
      var figure = el("figure");
      self.sheets[page.number] = drawPage(figure, page);
      pages.appendChild(figure);
    });
    this.panel.appendChild(pages);
    if (editable && state.roles.length) this.panel.appendChild(this.templateSaver());
    this.drawPlaces();
    this.save();
  };

  Editor.prototype.page = function (number) {
    return this.state.pages.filter(function (p) { return p.number === number; })[0];
  };

  Editor.prototype.drawPlaces = function (focusPlace) {
    var self = this;
    Object.keys(this.sheets).forEach(function (n) {
      self.sheets[n].querySelectorAll(".place").forEach(function (node) { node.remove(); });
    });
    this.state.places.forEach(function (place) {
      var page = self.page(place.page), sheet = self.sheets[place.page];
      if (!page || !sheet) return; // beyond the pages shown: kept as it is
      var node = placeNode(page, place, false);
      if (self.editable()) {
        node.tabIndex = 0;
        node.setAttribute("role", "group");
        node.setAttribute("aria-label", placeName(place, false) + ", page " + place.page);
        node.setAttribute("aria-describedby", "placement-help-" + self.index());
        node.appendChild(el("span", "place-handle"));
        self.interactive(node, place);
      }
      sheet.appendChild(node);
      if (place === focusPlace) node.focus();
    });
  };

  Editor.prototype.toolbar = function () {
    var self = this, bar = el("div", "placement-toolbar");
    this.state.roles.forEach(function (role) {
      var group = el("div", "placement-add");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Add a place for the " + role);
      group.appendChild(el("span", "placement-add-label", "Add for " + ROLE_NAMES[role] + ":"));
      Object.keys(KIND_NAMES).forEach(function (kind) {
        var button = el("button", "button secondary small-button", KIND_NAMES[kind]);
        button.type = "button";
        button.setAttribute("aria-label", "Add " + KIND_NAMES[kind].toLowerCase() + " place for the " + role);
        button.addEventListener("click", function () { self.add(role, kind); });
        group.appendChild(button);
      });
      bar.appendChild(group);
    });
    return bar;
  };

  Editor.prototype.add = function (role, kind) {
    var places = this.state.places;
    var signature = places.filter(function (p) { return p.role === role && p.kind === "signature"; })[0];
    if (kind === "signature" && signature) {
      this.announce("The " + role + " has a signature place already: move it instead.");
      return;
    }
    var page = this.page(signature ? signature.page : 1);
    var size = NEW_SIZE[kind], shown = shownSize(page);
    // Beside the signature when there is one, else in the page's middle.
    var rect = { left: 0.5 - size[0] / shown[0] / 2, top: 0.5, width: size[0] / shown[0], height: size[1] / shown[1] };
    if (signature) {
      var at = onImage(page, signature);
      rect.left = at.left + at.width + 8 / shown[0];
      rect.top = at.top + at.height - rect.height;
    }
    var place = Object.assign({ role: role, page: page.number, kind: kind }, fromImage(page, clampRect(rect)));
    places.push(place);
    this.drawPlaces(place);
    this.save();
    this.announce("Added " + placeName(place, false) + " on page " + page.number + ".");
  };

  Editor.prototype.remove = function (place) {
    this.state.places = this.state.places.filter(function (p) { return p !== place; });
    this.drawPlaces();
    this.save();
    this.announce("Removed " + placeName(place, false) + ".");
    var next = this.panel.querySelector(".place") || this.panel.querySelector(".placement-toolbar button");
    if (next) next.focus();
  };

  // Moves (dx, dy) or resizes (dw, dh) a place by fractions of its page image, and keeps it on the page.
  Editor.prototype.change = function (place, start, dx, dy, resize) {
    var page = this.page(place.page), shown = shownSize(page);
    var rect = { left: start.left, top: start.top, width: start.width, height: start.height };
    if (resize) {
      var min = MIN_SIZE[place.kind];
      var turned = page.rotation === 90 || page.rotation === 270;
      var minW = (turned ? min[1] : min[0]) / shown[0], minH = (turned ? min[0] : min[1]) / shown[1];
      rect.width = Math.max(minW, Math.min(start.width + dx, 1 - start.left));
      rect.height = Math.max(minH, Math.min(start.height + dy, 1 - start.top));
    } else {
      rect.left += dx; rect.top += dy;
    }
    Object.assign(place, fromImage(page, clampRect(rect)));
  };

  Editor.prototype.interactive = function (node, place) {
    var self = this;
    node.addEventListener("keydown", function (event) {
      var keys = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (event.key === "Delete" || event.key === "Backspace") {
        event.preventDefault();
        self.remove(place);
        return;
      }
      var move = keys[event.key];
      if (!move) return;
      event.preventDefault();
      var page = self.page(place.page), shown = shownSize(page), step = STEP * (event.altKey ? 5 : 1);
      self.change(place, onImage(page, place), move[0] * step / shown[0], move[1] * step / shown[1], event.shiftKey);
      positionPlace(node, page, place);
      self.save();
    });
    node.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      event.preventDefault();
      node.focus();
      var resize = event.target.classList.contains("place-handle");
      var page = self.page(place.page), start = onImage(page, place);
      var sheet = node.parentElement.getBoundingClientRect();
      var x0 = event.clientX, y0 = event.clientY;
      node.setPointerCapture(event.pointerId);
      node.classList.add("dragging");
      function moved(e) {
        self.change(place, start, (e.clientX - x0) / sheet.width, (e.clientY - y0) / sheet.height, resize);
        positionPlace(node, page, place);
      }
      function done(e) {
        moved(e);
        node.classList.remove("dragging");
        node.removeEventListener("pointermove", moved);
        node.removeEventListener("pointerup", done);
        node.removeEventListener("pointercancel", done);
        self.save();
      }
      node.addEventListener("pointermove", moved);
      node.addEventListener("pointerup", done);
      node.addEventListener("pointercancel", done);
    });
  };

  Editor.prototype.announce = function (message) {
    if (this.status) this.status.textContent = message;
  };

  // The places go into the hidden input (unless a signature page is appended instead), and a signer
  // without a signature place is named before the form is sent.
  Editor.prototype.save = function () {
    if (!this.state || !this.input) return;
    var appending = this.appendPage && this.appendPage.checked;
    this.input.value = appending ? "" : JSON.stringify(this.state.places);
    this.panel.classList.toggle("appending", !!appending);
    this.showWarning(false);
  };

  Editor.prototype.missing = function () {
    if (!this.state || (this.appendPage && this.appendPage.checked)) return [];
    var places = this.state.places;
    return this.state.roles.filter(function (role) {
      return !places.some(function (p) { return p.role === role && p.kind === "signature"; });
    });
  };

  Editor.prototype.showWarning = function (loud) {
    if (!this.warning) return;
    var missing = this.missing();
    this.warning.hidden = missing.length === 0;
    this.warning.textContent = "";
    if (!missing.length) return;
    var names = missing.map(function (r) { return "the " + r; }).join(" and ");
    this.warning.appendChild(el("p", "", "No signature place for " + names + " on " + this.state.name +
      ": add one with the buttons below, or tick “Append a signature page instead”."));
    if (loud) {
      this.warning.setAttribute("role", "alert");
      this.warning.tabIndex = -1;
      this.warning.focus();
    }
  };

  Editor.prototype.templateSaver = function () {
    var self = this, box = el("div", "placement-template");
    var id = "template-name-" + this.index();
    var label = el("label", "", "Template name");
    label.htmlFor = id;
    var input = el("input");
    input.id = id;
    input.type = "text";
    input.maxLength = 120;
    input.value = this.state.template || this.state.name.replace(/\.pdf$/i, "");
    var button = el("button", "button secondary", "Save these places as a template for this form");
    button.type = "button";
    var said = el("p", "hint");
    said.setAttribute("role", "status");
    button.addEventListener("click", function () {
      var file = self.row.querySelector("input[type=file]").files[0];
      var body = new FormData();
      body.append("csrf_token", self.form.querySelector("input[name=csrf_token]").value);
      body.append("name", input.value);
      body.append("places", JSON.stringify(self.state.places));
      body.append("file", file, file.name);
      button.disabled = true;
      said.textContent = "Saving…";
      fetch(self.form.getAttribute("data-template-url"), { method: "POST", body: body, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) { said.textContent = data.message || data.detail; })
        .catch(function () { said.textContent = "The template could not be saved just now. Try again."; })
        .then(function () { button.disabled = false; });
    });
    box.appendChild(el("p", "placement-template-hint", "An 8879 from your tax software looks the same every year: saved places are used next time by themselves."));
    var field = el("div", "field");
    field.appendChild(label);
    field.appendChild(input);
    box.appendChild(field);
    box.appendChild(button);
    box.appendChild(said);
    return box;
  };

  function setUpEditor(form) {
    var editors = new WeakMap();
    function editorOf(row) {
      if (!editors.has(row)) editors.set(row, new Editor(row, form));
      return editors.get(row);
    }
    form.addEventListener("change", function (event) {
      var row = event.target.closest("[data-doc-row]");
      if (!row) return;
      if (event.target.matches("input[type=file], select")) editorOf(row).load();
      else if (event.target.matches("[data-signature-page]")) editorOf(row).save();
    });
    form.addEventListener("submit", function (event) {
      var first = null;
      form.querySelectorAll("[data-doc-row]").forEach(function (row) {
        var editor = editors.get(row);
        if (!editor || !editor.state || !editor.missing().length) return;
        editor.showWarning(!first);
        first = first || editor;
      });
      if (first) { event.preventDefault(); event.stopImmediatePropagation(); }
    }, true);
  }

  ready(function () {
    var form = document.querySelector("[data-document-form][data-preview-url]");
    if (form) setUpEditor(form);
    document.querySelectorAll("[data-placement-view]").forEach(setUpView);
  });
})();
