/* Atelier generate page, side panels: the style select (GET /api/styles/) and the queue of my
 * queued/running jobs (GET /api/jobs/, POST /api/jobs/<id>/cancel/).
 * Each shows a clear message when its endpoint is missing. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;
  var styleSelect = $("id_style");

  /* ---------- styles ---------- */

  var styles = {};

  function describeStyle() {
    var info = $("style-info");
    if (!info || !styleSelect) return;
    var st = styles[styleSelect.value];
    info.textContent = st ? "Template: " + (st.prompt_template || st.prompt || "") +
      (st.negative_prompt ? " · negative: " + st.negative_prompt : "") : "";
  }

  function loadStyles(wanted) {
    if (!styleSelect) return;
    api("GET", styleSelect.dataset.api + "?page_size=100").then(function (r) {
      if (!r.ok || !r.data) {
        $("style-info").textContent = "Styles are not available (HTTP " + r.status + ").";
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
      $("style-info").textContent = "Could not load styles.";
    });
    styleSelect.addEventListener("change", describeStyle);
  }

  /* ---------- my running jobs ---------- */

  var queue = $("job-queue");
  var queueTimer = null;

  function queueItem(job) {
    var li = document.createElement("li");
    li.className = "queue-item";
    li.dataset.job = job.id;
    var label = document.createElement("span");
    label.className = "queue-label";
    label.textContent = job.kind + " · " + job.status +
      (job.total_steps ? " · step " + job.step + " / " + job.total_steps : "") +
      (job.cancel_requested ? " · canceling…" : "");
    var bar = document.createElement("progress");
    bar.max = 1;
    bar.value = job.progress || 0;
    var b = document.createElement("button");
    b.type = "button";
    b.className = "ghost small danger queue-cancel";
    b.textContent = "Cancel";
    b.disabled = !!job.cancel_requested;
    b.addEventListener("click", function () {
      b.disabled = true;
      api("POST", queue.dataset.api + encodeURIComponent(job.id) + "/cancel/").then(function (r) {
        if (!r.ok) $("queue-msg").textContent = (r.data && r.data.message) || "Could not cancel.";
        refreshQueue();
      });
    });
    li.appendChild(label);
    li.appendChild(bar);
    li.appendChild(b);
    return li;
  }

  var ACTIVE = { queued: 1, running: 1, paused: 1 };

  /* One GET of my newest jobs (newest first); the unfinished ones are listed. Polls every
     2 s while something runs, every 6 s otherwise, not at all while the tab is hidden. */
  function refreshQueue() {
    if (!queue) return;
    clearTimeout(queueTimer);
    if (document.hidden) { queueTimer = setTimeout(refreshQueue, 6000); return; }
    api("GET", queue.dataset.api + "?page_size=30").then(function (r) {
      if (!r.ok || !r.data) {
        $("queue-msg").textContent = "Jobs are not available (HTTP " + r.status + ").";
        return;
      }
      $("queue-msg").textContent = "";
      var jobs = (Array.isArray(r.data) ? r.data : (r.data.results || []))
        .filter(function (j) { return ACTIVE[j.status]; });
      var list = $("queue-list");
      list.textContent = "";
      jobs.forEach(function (j) { list.appendChild(queueItem(j)); });
      $("queue-empty").hidden = jobs.length > 0;
      queueTimer = setTimeout(refreshQueue, jobs.length ? 2000 : 6000);
    }, function () {
      queueTimer = setTimeout(refreshQueue, 6000);
    });
  }

  window.Atelier.refreshQueue = refreshQueue;
  var gen = window.Atelier.gen || {};
  loadStyles(new URLSearchParams(location.search).get("style") || gen.savedStyle || "");
  refreshQueue();
})();
