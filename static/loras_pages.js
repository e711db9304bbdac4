/* Atelier library tool pages (loaded after loras.js, which exposes window.AtelierLoras):
 * /loras/trash/ (restore), /loras/duplicates/ (keep one, trash the others through
 * DELETE /api/loras/<id>/), /loras/downloads/ (live progress by polling GET /api/downloads/,
 * cancel through POST /api/jobs/<id>/cancel/). No framework. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var L = window.AtelierLoras;
  if (!L) return;
  var TERMINAL = { succeeded: 1, failed: 1, canceled: 1 };

  /* ---------- trash ---------- */

  var trash = $("lora-trash-page");
  if (trash) trash.addEventListener("click", function (ev) {
    var btn = ev.target.closest(".restore-btn");
    if (!btn) return;
    var row = btn.closest(".trash-row");
    btn.disabled = true;
    L.api("POST", "/api/loras/" + row.dataset.id + "/restore/").then(function (r) {
      if (!r.ok) { btn.disabled = false; L.showError(L.errorMessage(r, "Could not restore " + row.dataset.name)); return; }
      row.classList.add("done");
      btn.remove();
      var link = document.createElement("a");
      link.className = "button small";
      link.href = "/loras/" + row.dataset.id + "/";
      link.textContent = "Restored: open";
      row.querySelector(".tool-actions").appendChild(link);
      L.showNotice(row.dataset.name + " is back in the library.");
    });
  });

  /* ---------- duplicates ---------- */

  var dups = $("lora-duplicates-page");
  if (dups) {
    dups.addEventListener("change", function (ev) {
      if (!ev.target.classList.contains("keep-radio")) return;
      var group = ev.target.closest(".dup-group");
      group.querySelectorAll(".dup-row").forEach(function (tr) {
        tr.classList.toggle("keep", tr.dataset.id === ev.target.value);
      });
    });
    dups.addEventListener("click", function (ev) {
      var btn = ev.target.closest(".trash-others");
      if (!btn) return;
      var group = btn.closest(".dup-group");
      var rows = Array.prototype.slice.call(group.querySelectorAll(".dup-row:not(.keep):not(.trashed)"));
      if (!rows.length) return;
      if (!window.confirm("Move " + rows.length + " duplicate file" + (rows.length === 1 ? "" : "s") +
          " to the trash? The kept one stays; the trash can restore them.")) return;
      btn.disabled = true;
      Promise.all(rows.map(function (tr) {
        return L.api("DELETE", "/api/loras/" + tr.dataset.id + "/").then(function (r) {
          if (r.ok) { tr.classList.add("trashed"); tr.querySelector(".keep-radio").disabled = true; return null; }
          return tr.querySelector("code").textContent + ": " + L.errorMessage(r, "not trashed");
        });
      })).then(function (fails) {
        fails = fails.filter(Boolean);
        btn.disabled = false;
        if (fails.length) L.showError(fails.join("; "));
        else {
          btn.remove();
          L.showNotice(rows.length + " moved to the trash.");
        }
      });
    });
  }

  /* ---------- downloads ---------- */

  var dl = $("lora-downloads-page");
  if (!dl) return;

  function mb(bytes) {
    if (bytes >= 1024 * 1024 * 1024) return (bytes / (1024 * 1024 * 1024)).toFixed(2) + " GB";
    if (bytes >= 1024 * 1024) return (bytes / (1024 * 1024)).toFixed(1) + " MB";
    if (bytes >= 1024) return (bytes / 1024).toFixed(1) + " KB";
    return bytes + " bytes";
  }

  function render(row, d) {
    var job = d.job || {};
    row.dataset.status = job.status || "";
    var bar = row.querySelector(".dl-bar");
    var total = d.total_bytes || 0;
    bar.max = total || 1;
    bar.value = total ? Math.min(d.downloaded_bytes || 0, total) : (TERMINAL[job.status] ? 1 : 0);
    var text = job.status || "";
    if (total) text += " · " + mb(d.downloaded_bytes || 0) + " of " + mb(total) + " (" + Math.floor(100 * (d.downloaded_bytes || 0) / total) + "%)";
    else if (d.downloaded_bytes) text += " · " + mb(d.downloaded_bytes);
    if (job.eta_seconds && job.status === "running") text += " · about " + Math.ceil(job.eta_seconds) + " s left";
    if (job.error && job.error.message) text += " · " + job.error.message;
    else if (job.message && !TERMINAL[job.status]) text += " · " + job.message;
    row.querySelector(".dl-text").textContent = text;
    var cancel = row.querySelector(".cancel-btn");
    if (cancel) cancel.hidden = !!TERMINAL[job.status] || !!job.cancel_requested;
    if (d.file_name) row.querySelector(".dl-name").textContent = d.file_name;
  }

  var timer = null;
  function poll() {
    timer = null;
    L.api("GET", dl.dataset.apiDownloads + "?page_size=100").then(function (r) {
      if (!r.ok) { L.showError(L.errorMessage(r, "Could not read the downloads")); return; }
      var items = Array.isArray(r.data) ? r.data : (r.data.results || []);
      var active = false;
      items.forEach(function (d) {
        var row = dl.querySelector('.download-row[data-id="' + d.id + '"]');
        if (!row) return;
        render(row, d);
        if (!TERMINAL[(d.job || {}).status]) active = true;
      });
      if (active) timer = setTimeout(poll, 1000);
    });
  }
  function anyActive() {
    return Array.prototype.some.call(dl.querySelectorAll(".download-row"), function (row) {
      return !TERMINAL[row.dataset.status];
    });
  }
  if (dl.querySelector(".download-row")) poll();

  dl.addEventListener("click", function (ev) {
    var btn = ev.target.closest(".cancel-btn");
    if (!btn) return;
    var row = btn.closest(".download-row");
    btn.disabled = true;
    L.api("POST", dl.dataset.apiJobs + row.dataset.job + "/cancel/").then(function (r) {
      btn.disabled = false;
      if (!r.ok) { L.showError(L.errorMessage(r, "Could not cancel")); return; }
      btn.hidden = true;
      row.querySelector(".dl-text").textContent = "canceling…";
      if (!timer && anyActive()) poll();
    });
  });
})();
