/* Portico portal: the notification bell (a disclosure) and live updates over Server-Sent Events.
   The server sends `unread` (the count), `notification` (a new one) and `chat` (a new message of the return
   on screen, as escaped HTML rendered by the server). Without EventSource the pages' htmx polls stay. */
(function () {
  "use strict";
  var bell = document.querySelector("[data-bell]");
  var log = document.getElementById("chat-log");
  var live = !!(window.EventSource && bell);

  // Deferred scripts run before htmx starts its triggers (on DOMContentLoaded): with a stream, the
  // fallback polls never start. They come back if the stream cannot be opened at all.
  var parked = [];
  if (live) {
    document.querySelectorAll("[data-poll-fallback], #chat-poll").forEach(function (el) {
      parked.push({ el: el, parent: el.parentNode, next: el.nextSibling });
      el.remove();
    });
  }

  function announce(text) {
    if (window.Portico && window.Portico.announce) window.Portico.announce(text);
  }

  // ---- the bell: a disclosure button ----
  function button() { return document.querySelector("[data-bell-button]"); }
  function panel() { return document.querySelector("[data-bell-panel]"); }

  function setOpen(open) {
    var b = button(), p = panel();
    if (!b || !p) return;
    b.setAttribute("aria-expanded", open ? "true" : "false");
    p.hidden = !open;
  }

  document.addEventListener("click", function (event) {
    var b = button();
    if (!b) return;
    if (b.contains(event.target)) {
      setOpen(b.getAttribute("aria-expanded") !== "true");
      return;
    }
    var p = panel();
    if (p && !p.hidden && !p.contains(event.target)) setOpen(false);
  });
  document.addEventListener("keydown", function (event) {
    var b = button(), p = panel();
    if (event.key !== "Escape" || !b || !p || p.hidden) return;
    setOpen(false);
    b.focus();
  });

  function setCount(count, label) {
    document.querySelectorAll("[data-bell-count]").forEach(function (el) {
      el.textContent = String(count);
      el.hidden = count === 0;
    });
    document.querySelectorAll("[data-bell-label]").forEach(function (el) {
      el.setAttribute("aria-label", label);
    });
  }

  function addNotification(n) {
    var list = document.querySelector("[data-bell-list]");
    if (!list || list.querySelector('[data-notification="' + n.id + '"]')) return;
    var item = document.createElement("li");
    item.className = "bell-item" + (n.read ? "" : " unread");
    item.setAttribute("data-notification", String(n.id));
    var link = document.createElement("a");
    link.href = n.open_url;
    if (!n.read) {
      var hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = "Unread: ";
      link.appendChild(hidden);
    }
    var title = document.createElement("span");
    title.className = "bell-item-title";
    title.textContent = n.title;
    var meta = document.createElement("span");
    meta.className = "bell-item-meta";
    meta.textContent = (n.tax_year ? n.tax_year + " return · " : "") + "just now";
    link.appendChild(title);
    link.appendChild(meta);
    item.appendChild(link);
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 8) list.removeChild(list.lastChild);
    var empty = document.querySelector("[data-bell-empty]");
    if (empty) empty.hidden = true;
    if (bell) bell.setAttribute("data-after", String(n.id));
    announce("New notification: " + n.title);
  }

  function addChat(message) {
    if (!log || document.getElementById("msg-" + message.id)) return;
    log.insertAdjacentHTML("beforeend", message.html);  // rendered and escaped by the server
    var empty = log.querySelector("[data-chat-empty]");
    if (empty) empty.remove();
    log.scrollTop = log.scrollHeight;
  }

  function lastChatId() {
    var messages = log ? log.querySelectorAll(".msg[id^='msg-']") : [];
    if (!messages.length) return null;
    return messages[messages.length - 1].id.slice(4);
  }

  function restorePolls() {
    parked.forEach(function (p) {
      if (!document.body.contains(p.parent)) return;
      p.parent.insertBefore(p.el, p.next && p.parent.contains(p.next) ? p.next : null);
      if (window.htmx) window.htmx.process(p.el);
    });
    parked = [];
  }

  // A form that marks notifications read reloads the page without JS; with it, htmx-free fetch keeps the
  // panel where it is.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest ? event.target.closest("[data-bell-read-all]") : null;
    if (!form || !window.fetch) return;
    event.preventDefault();
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "HX-Request": "true", "X-CSRF-Token": window.Portico ? window.Portico.csrfToken() : "" },
      credentials: "same-origin",
    }).then(function (response) {
      if (!response.ok) { form.submit(); return; }
      document.querySelectorAll("[data-bell-list] .bell-item.unread").forEach(function (item) {
        item.classList.remove("unread");
        var hidden = item.querySelector(".visually-hidden");
        if (hidden) hidden.remove();
      });
      announce("All notifications marked as read.");
    });
  });

  if (!live) return;
  var params = "?n=" + encodeURIComponent(bell.getAttribute("data-after") || "0");
  var chatId = lastChatId();
  if (chatId !== null) params += "&c=" + encodeURIComponent(chatId);
  else if (log) params += "&c=0";
  var opened = false;
  var source = new EventSource("/portal/events" + params);
  source.addEventListener("open", function () { opened = true; });
  source.addEventListener("unread", function (event) {
    var data = JSON.parse(event.data);
    setCount(data.unread, data.label);
  });
  source.addEventListener("notification", function (event) { addNotification(JSON.parse(event.data)); });
  source.addEventListener("chat", function (event) { addChat(JSON.parse(event.data)); });
  source.addEventListener("logout", function () { source.close(); });
  source.addEventListener("error", function () {
    // The browser reconnects by itself after a dropped stream; a stream never opened (refused) falls back.
    if (source.readyState === EventSource.CLOSED || !opened) {
      source.close();
      restorePolls();
    }
  });
})();
