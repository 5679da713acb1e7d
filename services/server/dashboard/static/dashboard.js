/* labweave dashboard: keeps server-rendered fragments live and sends the operator's controls.
 *
 * - Each element with data-fragment="URL" is re-fetched from URL when an event of one of its
 *   data-topics ("request", "result", "tenant", "campaign", ...) arrives on /dashboard/events,
 *   and every data-every seconds if set (online/offline changes without an event).
 * - Forms with class js-action are posted with fetch; the answer shows in a toast.
 * - <time data-ago> and <span data-expires> count on every second.
 * No library, nothing from another site.
 */
(function () {
  "use strict";

  var PREFIX = "/dashboard";
  var DEBOUNCE_MS = 250;
  var dirty = new Set();
  var timer = null;
  var sequence = new WeakMap();

  function loginUrl() {
    return PREFIX + "/login?next=" + encodeURIComponent(location.pathname + location.search);
  }

  function bump(name) {
    document.body.dataset[name] = String(Number(document.body.dataset[name] || 0) + 1);
  }

  // -- durations, as the server writes them -------------------------------------------
  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60), s = seconds % 60;
    if (minutes < 60) return s ? minutes + " min " + s + " s" : minutes + " min";
    var hours = Math.floor(minutes / 60), m = minutes % 60;
    if (hours < 24) return m ? hours + " h " + m + " min" : hours + " h";
    var days = Math.floor(hours / 24), h = hours % 24;
    return h ? days + " d " + h + " h" : days + " d";
  }

  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-ago]").forEach(function (el) {
      var t = Number(el.dataset.ago);
      el.textContent = t > now + 1 ? "in " + duration(t - now) : duration(now - t) + " ago";
    });
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Number(el.dataset.expires) - now;
      el.textContent = left > 0 ? duration(left) + " left" : "expired " + duration(-left) + " ago";
      el.classList.toggle("expired", left <= 0);
    });
  }

  // -- fragments ---------------------------------------------------------------------------
  function sections() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-fragment]"));
  }

  var busy = new Set();     // sections being fetched
  var again = new Set();    // sections that changed again meanwhile

  async function refresh(section) {
    if (busy.has(section)) { again.add(section); return; }  // one fetch per section at a time
    busy.add(section);
    try { await load(section); } finally {
      busy.delete(section);
      if (again.delete(section)) refresh(section);
    }
  }

  async function load(section) {
    var mine = (sequence.get(section) || 0) + 1;
    sequence.set(section, mine);
    var response;
    try {
      response = await fetch(section.dataset.fragment, {
        headers: { "Accept": "text/html" }, credentials: "same-origin", cache: "no-store"
      });
    } catch (err) {
      return;  // the server is away; the event stream reconnects and refreshes again
    }
    if (response.status === 401) { location.href = loginUrl(); return; }
    if (!response.ok || sequence.get(section) !== mine) return;  // an older answer than one already shown
    var html = await response.text();
    var open = new Set();
    section.querySelectorAll("details[open][data-key]").forEach(function (d) { open.add(d.dataset.key); });
    section.innerHTML = html;
    section.querySelectorAll("details[data-key]").forEach(function (d) {
      if (open.has(d.dataset.key)) d.open = true;
    });
    tick();
    bump("refreshes");
  }

  function flush() {
    timer = null;
    var list = Array.from(dirty);
    dirty.clear();
    list.forEach(refresh);
  }

  function touch(topic) {
    sections().forEach(function (s) {
      var topics = (s.dataset.topics || "").split(/\s+/);
      if (topic === "*" || topics.indexOf(topic) >= 0) dirty.add(s);
    });
    if (dirty.size && timer === null) timer = setTimeout(flush, DEBOUNCE_MS);
  }

  function every() {
    sections().forEach(function (s) {
      var seconds = Number(s.dataset.every || 0);
      if (seconds > 0) setInterval(function () { refresh(s); }, seconds * 1000);
    });
  }

  // -- the event stream --------------------------------------------------------------------
  function live(state, text) {
    var el = document.getElementById("live");
    if (!el) return;
    el.dataset.state = state;
    el.querySelector(".live-text").textContent = text;
  }

  function connect() {
    if (!window.EventSource) { live("reconnecting", "no live updates"); return; }
    var source = new EventSource(PREFIX + "/events");
    source.onopen = function () { live("live", "live"); };
    source.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (err) { return; }
      bump("events");
      touch(String(event.kind || "").split(".")[0]);
    };
    source.addEventListener("session-ended", function () { location.href = loginUrl(); });
    source.onerror = function () {
      live("reconnecting", "reconnecting…");
      if (source.readyState === EventSource.CLOSED) {
        // refused (the session ended?) rather than dropped: find out, then try again
        fetch(PREFIX + "/fragments/summary", { credentials: "same-origin" }).then(function (r) {
          if (r.status === 401) location.href = loginUrl();
          else setTimeout(connect, 3000);
        }, function () { setTimeout(connect, 3000); });
      }
    };
  }

  // -- controls ----------------------------------------------------------------------------
  function toast(text, level) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.dataset.level = level;
    el.hidden = false;
    clearTimeout(el._hide);
    el._hide = setTimeout(function () { el.hidden = true; }, level === "error" ? 8000 : 4000);
  }

  async function send(form) {
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    var body = new URLSearchParams(new FormData(form));
    if (form.dataset.prompt) {
      var reason = window.prompt(form.dataset.prompt, body.get("reason") || "");
      if (reason === null) return;
      body.set("reason", reason);
    }
    var button = form.querySelector("button");
    if (button) button.disabled = true;
    try {
      var response = await fetch(form.action, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "Accept": "application/json" }
      });
      if (response.status === 401) { location.href = loginUrl(); return; }
      var answer = await response.json().catch(function () { return { ok: false, message: response.statusText }; });
      toast(answer.message || (answer.ok ? "Done." : "Refused."), answer.ok ? "info" : "error");
    } catch (err) {
      toast("The server did not answer: " + err, "error");
    } finally {
      if (button) button.disabled = false;
      touch("*");
    }
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("js-action")) return;
    e.preventDefault();
    send(form);
  });

  // -- queue filters: applied as they change, the URL kept shareable -------------------------
  function filters() {
    var form = document.querySelector("form[data-filter-for]");
    if (!form) return;
    var target = document.getElementById(form.dataset.filterFor);
    var wait = null;
    function apply() {
      var params = new URLSearchParams(new FormData(form));
      Array.from(params.keys()).forEach(function (k) {
        if (!params.get(k) || (k === "status" && params.get(k) === "all")) params.delete(k);
      });
      var qs = params.toString();
      history.replaceState(null, "", location.pathname + (qs ? "?" + qs : ""));
      target.dataset.fragment = PREFIX + "/fragments/queue" + (qs ? "?" + qs : "");
      refresh(target);
    }
    form.addEventListener("change", function () { apply(); });
    form.addEventListener("input", function (e) {
      if (e.target.name !== "q") return;
      clearTimeout(wait);
      wait = setTimeout(apply, 350);
    });
    form.addEventListener("submit", function (e) { e.preventDefault(); apply(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    every();
    filters();
    connect();
  });
})();
