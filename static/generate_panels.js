/* Atelier generate page, side panels: the style select (GET /api/styles/) and the queue of my
 * queued/running jobs (GET /api/jobs/, POST /api/jobs/<id>/cancel/).
 * Each shows a clear message when its endpoint is missing. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;
  // Django's JavaScript catalog (/jsi18n/, docs/i18n.md); English without it.
  var gettext = window.gettext || function (s) { return s; };
  var fmt = function (text, value) { return text.replace("%s", value); };
  var styleSelect = $("id_style");

  /* ---------- styles ---------- */

  var styles = {};

  function describeStyle() {
    var info = $("style-info");
    if (!info || !styleSelect) return;
    var st = styles[styleSelect.value];
    info.textContent = st ? fmt(gettext("Template: %s"), st.prompt_template || st.prompt || "") +
      (st.negative_prompt ? " · " + fmt(gettext("negative: %s"), st.negative_prompt) : "") : "";
  }

  function loadStyles(wanted) {
    if (!styleSelect) return;
    api("GET", styleSelect.dataset.api + "?page_size=100").then(function (r) {
      if (!r.ok || !r.data) {
        $("style-info").textContent = fmt(gettext("Styles are not available (HTTP %s)."), r.status);
        styleSelect.disabled = true;
        return;
      }
      var items = Array.isArray(r.data) ? r.data : (r.data.results || []);
      items.forEach(function (st) {
        styles[String(st.id)] = st;
        var opt = document.createElement("option");
        opt.value = String(st.id);
        opt.textContent = st.name;
        styleSelect.appendChild(opt);
      });
      if (wanted) {
        for (var i = 0; i < styleSelect.options.length; i++) {
          var o = styleSelect.options[i];
          if (o.value === wanted || o.textContent === wanted) { styleSelect.selectedIndex = i; break; }
        }
      }
      describeStyle();
    }, function () {
      $("style-info").textContent = gettext("Could not load styles.");
    });
    styleSelect.addEventListener("change", describeStyle);
  }

  /* ---------- my running jobs ----------
     Follows /ws/jobs/ (every snapshot of my jobs, as it happens): an item changes in place, a
     job that ended leaves the list at once, so nothing shows "running · canceling…" with a live
     Cancel after the job was canceled. GET /api/jobs/ fills the list first and is the fallback
     while the socket is down (every 2 s while something runs, 6 s otherwise; 30 s with the
     socket up, to catch what it might have missed). Snapshots carry ``seq``: an older one than
     the item shows is dropped. */

  var queue = $("job-queue");
  var queueTimer = null;
  var queueSocket = null;
  var socketUp = false;
  var ACTIVE = { queued: 1, running: 1, paused: 1 };
  var shown = {};  // job id -> {li, seq}

  function queueLabel(job) {
    return job.kind + " · " + job.status +
      (job.total_steps ? " · " + fmt(fmt(gettext("step %s / %s"), job.step), job.total_steps) : "") +
      (job.cancel_requested ? " · " + gettext("canceling…") : "");
  }

  function queueItem(job) {
    var li = document.createElement("li");
    li.className = "queue-item";
    li.dataset.job = job.id;
    var label = document.createElement("span");
    label.className = "queue-label";
    var bar = document.createElement("progress");
    bar.max = 1;
    var b = document.createElement("button");
    b.type = "button";
    b.className = "ghost small danger queue-cancel";
    b.textContent = gettext("Cancel");
    b.addEventListener("click", function () {
      b.disabled = true;
      api("POST", queue.dataset.api + encodeURIComponent(job.id) + "/cancel/").then(function (r) {
        if (!r.ok) $("queue-msg").textContent = (r.data && r.data.message) || gettext("Could not cancel.");
        if (!socketUp) refreshQueue();
      });
    });
    li.appendChild(label);
    li.appendChild(bar);
    li.appendChild(b);
    return li;
  }

  function queueShow(job) {
    var item = shown[job.id];
    if (item && job.seq != null && item.seq != null && job.seq < item.seq) return;  // stale
    var list = $("queue-list");
    if (!ACTIVE[job.status]) {
      if (item) { item.li.remove(); delete shown[job.id]; }
    } else {
      if (!item) {
        item = shown[job.id] = { li: queueItem(job), seq: null };
        list.insertBefore(item.li, list.firstChild);  // newest first
      }
      item.seq = job.seq;
      item.li.querySelector(".queue-label").textContent = queueLabel(job);
      item.li.querySelector("progress").value = job.progress || 0;
      item.li.querySelector(".queue-cancel").disabled = !!job.cancel_requested;
    }
    $("queue-empty").hidden = Object.keys(shown).length > 0;
  }

  /* One GET of my newest jobs (newest first): the unfinished ones are listed, the rest
     removed. */
  function refreshQueue() {
    if (!queue) return;
    clearTimeout(queueTimer);
    if (document.hidden) { queueTimer = setTimeout(refreshQueue, 6000); return; }
    api("GET", queue.dataset.api + "?page_size=30").then(function (r) {
      if (!r.ok || !r.data) {
        $("queue-msg").textContent = fmt(gettext("Jobs are not available (HTTP %s)."), r.status);
        queueTimer = setTimeout(refreshQueue, 6000);
        return;
      }
      $("queue-msg").textContent = "";
      var jobs = Array.isArray(r.data) ? r.data : (r.data.results || []);
      var active = {};
      jobs.slice().reverse().forEach(function (j) {
        if (ACTIVE[j.status]) active[j.id] = 1;
        queueShow(j);
      });
      Object.keys(shown).forEach(function (id) {  // ended since, beyond the 30 newest
        if (!active[id]) { shown[id].li.remove(); delete shown[id]; }
      });
      $("queue-empty").hidden = Object.keys(shown).length > 0;
      var busy = Object.keys(shown).length > 0;
      queueTimer = setTimeout(refreshQueue, socketUp ? 30000 : (busy ? 2000 : 6000));
    }, function () {
      queueTimer = setTimeout(refreshQueue, 6000);
    });
  }

  function connectQueue(delay) {
    if (!queue || !("WebSocket" in window)) return;
    var scheme = location.protocol === "https:" ? "wss" : "ws";
    var ws;
    try {
      ws = new WebSocket(scheme + "://" + location.host + "/ws/jobs/");
    } catch (e) {
      return;
    }
    queueSocket = ws;
    ws.onopen = function () { socketUp = true; delay = 1000; refreshQueue(); };
    ws.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (data && data.type === "job" && data.job) queueShow(data.job);
    };
    ws.onclose = function () {
      socketUp = false;
      queueSocket = null;
      refreshQueue();
      setTimeout(function () { connectQueue(Math.min((delay || 1000) * 2, 30000)); },
                 delay || 1000);
    };
  }

  window.Atelier.refreshQueue = refreshQueue;
  window.Atelier.queueSocket = function () { return queueSocket; };
  var gen = window.Atelier.gen || {};
  loadStyles(new URLSearchParams(location.search).get("style") || gen.savedStyle || "");
  refreshQueue();
  connectQueue(1000);
})();
