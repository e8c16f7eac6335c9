/* Portico portal: small enhancements on top of server-rendered pages. No inline scripts (CSP). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  // One live region for the whole page, there from the start: screen readers announce a change to a region
  // they already know, not a role="status" that arrives together with its text.
  function liveRegion() {
    var region = document.getElementById("live-status");
    if (!region) {
      region = document.createElement("div");
      region.id = "live-status";
      region.className = "visually-hidden";
      region.setAttribute("role", "status");
      document.body.appendChild(region);
    }
    return region;
  }

  function announce(text) {
    var region = liveRegion();
    region.textContent = "";  // the same words twice in a row are a new announcement too
    setTimeout(function () { region.textContent = text; }, 50);
  }
  window.Portico = { csrfToken: csrfToken, announce: announce };

  // After an htmx swap a person asked for: read out what the new content marks with data-announce, and
  // when the control they used was swapped away, put focus on the one the content marks with
  // data-focus-after-swap (the next control in the same row), not on the page body. Several swaps of one
  // response (the row and the summary above it) settle one after the other: gather them first.
  var pendingSwap = null;
  document.addEventListener("htmx:afterSettle", function () {
    if (pendingSwap) return;
    pendingSwap = setTimeout(function () {
      pendingSwap = null;
      var words = [];
      document.querySelectorAll("[data-announce]").forEach(function (el) {
        words.push(el.getAttribute("data-announce") || el.textContent.trim());
        el.removeAttribute("data-announce");
      });
      if (words.length) announce(words.join(" "));
      var next = document.querySelector("[data-focus-after-swap]");
      if (next) {
        next.removeAttribute("data-focus-after-swap");
        var focused = document.activeElement;
        if (!focused || focused === document.body || !document.body.contains(focused)) next.focus();
      }
    }, 0);
  });

  // htmx requests carry the CSRF token in a header, like fetch() calls do.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    liveRegion();
    // Errors after a full-page submit: move focus there so screen readers read them first.
    var focusTarget = document.querySelector("[data-focus-on-load]");
    if (focusTarget) focusTarget.focus();

    document.querySelectorAll("[data-show-password]").forEach(function (box) {
      box.addEventListener("change", function () {
        var input = document.getElementById(box.getAttribute("data-show-password"));
        if (input) input.type = box.checked ? "text" : "password";
      });
    });

    document.querySelectorAll("[data-cooldown]").forEach(startCooldown);
    setUpChat();
  });

  // Resend buttons stay disabled until the cooldown ends; the count is in seconds from the server.
  function startCooldown(box) {
    var seconds = parseInt(box.getAttribute("data-cooldown"), 10) || 0;
    if (seconds <= 0) return;
    var counter = box.querySelector("[data-seconds]");
    var text = box.querySelector("[data-cooldown-text]");
    var done = box.querySelector("[data-cooldown-done]");
    var timer = setInterval(function () {
      seconds -= 1;
      if (counter) counter.textContent = String(Math.max(seconds, 0));
      if (seconds <= 0) {
        clearInterval(timer);
        box.querySelectorAll("button[disabled]").forEach(function (b) { b.disabled = false; });
        if (text) text.hidden = true;
        if (done) done.textContent = "You can ask for a new code now.";
      }
    }, 1000);
  }

  function setUpChat() {
    var log = document.getElementById("chat-log");
    if (!log) return;
    log.scrollTop = log.scrollHeight;
    document.addEventListener("htmx:oobAfterSwap", function (event) {
      if (event.detail.target !== log) return;
      var seen = {};
      log.querySelectorAll(".msg").forEach(function (msg) {  // a poll and a send may cross: keep one
        if (seen[msg.id]) msg.remove();
        seen[msg.id] = true;
      });
      var empty = log.querySelector("[data-chat-empty]");
      if (empty) empty.remove();
      log.scrollTop = log.scrollHeight;
    });
  }

  // Escape closes the phone menu and puts focus back on its button.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var menu = document.querySelector("details.nav-mobile[open]");
    if (!menu) return;
    menu.open = false;
    menu.querySelector("summary").focus();
  });

  // The server answers a sent message with the "chat-sent" event: clear the box for the next one.
  document.addEventListener("chat-sent", function () {
    var form = document.querySelector("form[data-reset-on-success]");
    if (form) form.reset();
  });
})();
