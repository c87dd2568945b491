// ocis dashboard: follows the Server-Sent Events stream and sends the
// buttons' forms without leaving the page. Everything works without it;
// it only saves reloads. No library.
"use strict";
(() => {
  const grid = document.getElementById("grid");
  const live = document.getElementById("live");
  const notice = document.getElementById("notice");
  const dialog = document.getElementById("logs");

  const say = (state, text) => { live.dataset.state = state; live.textContent = text; };
  const warn = (text) => { notice.textContent = text; notice.hidden = !text; };

  // Live updates: each "grid" event is the whole table, rendered by the
  // server. The element that had the focus gets it back by id.
  const events = new EventSource("/ui/events");
  events.onopen = () => say("on", "live");
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED) {
      say("closed", "disconnected; reload the page (or log in again)");
    } else {
      say("retry", "reconnecting…");
    }
  };
  events.addEventListener("grid", (e) => {
    const focused = document.activeElement && grid.contains(document.activeElement) ? document.activeElement.id : "";
    grid.innerHTML = e.data;
    if (focused) {
      const again = document.getElementById(focused);
      if (again) again.focus();
    }
    tick();
  });

  // Uptimes count on between events.
  const age = (s) => {
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  };
  const tick = () => {
    for (const t of grid.querySelectorAll("time[data-since]")) {
      const since = Date.parse(t.dataset.since);
      if (!isNaN(since)) t.textContent = age(Math.max(0, Math.floor((Date.now() - since) / 1000)));
    }
  };
  setInterval(tick, 1000);

  // Buttons: the form is posted with fetch; the answer is the service's
  // status or the API's error, and the new state arrives as an event.
  grid.addEventListener("submit", async (e) => {
    const form = e.target;
    const button = e.submitter;
    if (!form.classList.contains("actions") || !button) return;
    e.preventDefault();
    const body = new URLSearchParams(new FormData(form, button));
    button.setAttribute("aria-busy", "true");
    warn("");
    try {
      const resp = await fetch(form.action, {
        method: "POST", body, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": body.get("csrf") },
      });
      if (!resp.ok) {
        let text = resp.status + " " + resp.statusText;
        try { text = (await resp.json()).error.message; } catch (_) { /* not JSON */ }
        warn(button.getAttribute("aria-label") + ": " + text);
      }
    } catch (err) {
      warn(button.getAttribute("aria-label") + ": " + err);
    } finally {
      button.removeAttribute("aria-busy");
    }
  });

  // Logs: shown in a dialog instead of a page of their own.
  grid.addEventListener("click", async (e) => {
    const link = e.target.closest("a.logs-link");
    if (!link || !dialog.showModal) return;
    e.preventDefault();
    const resp = await fetch(link.href + "?fragment=1", { credentials: "same-origin" });
    const html = await resp.text();
    const body = document.getElementById("logs-body");
    body.innerHTML = html;
    const what = body.querySelector("[data-title]");
    document.getElementById("logs-title").textContent = "Logs of " + (what ? what.dataset.title : "");
    dialog.returnFocus = link.id;
    dialog.showModal();
    const pre = body.querySelector("pre");
    if (pre) pre.scrollTop = pre.scrollHeight;
  });
  dialog.addEventListener("close", () => {
    const back = document.getElementById(dialog.returnFocus || "");
    if (back) back.focus();
  });
})();
