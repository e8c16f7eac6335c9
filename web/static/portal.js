/* Portico portal: small enhancements on top of server-rendered pages. No inline scripts (CSP). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  window.Portico = { csrfToken: csrfToken };

  // htmx requests carry the CSRF token in a header, like fetch() calls do.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
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
