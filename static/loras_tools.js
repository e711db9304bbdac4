/* Atelier LoRA list page tools (loaded after loras.js, which exposes window.AtelierLoras):
 * the summary of the last scan ("16 new, 6 errors: …", each error listed), Civitai
 * "Refresh all" followed as a job, and auto-organize as a previewed plan (from → to) that
 * the user applies or discards. No framework. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var L = window.AtelierLoras;
  var root = $("lora-list-page");
  if (!L || !root) return;
  var SCAN_KEY = "atelier.loras.scanResult";

  function li(text, cls) {
    var el = document.createElement("li");
    if (cls) el.className = cls;
    el.textContent = text;
    return el;
  }

  /* ---------- scan summary (the scan job's result, kept over the reload) ---------- */

  /* "16 new, 2 updated, 6 errors" from library_scan's report (loras/services/scan.py). */
  function scanSummary(res) {
    var parts = [];
    [["new", "new"], ["updated", "updated"], ["moved", "moved"], ["missing", "missing"],
     ["reappeared", "back"]].forEach(function (kv) {
      if (res[kv[0]]) parts.push(res[kv[0]] + " " + kv[1]);
    });
    var errs = res.errors_total || (res.errors || []).length;
    if (errs) parts.push(errs + " error" + (errs === 1 ? "" : "s"));
    if ((res.unreadable || []).length) parts.push(res.unreadable.length + " unreadable folder(s)");
    if ((res.loops || []).length) parts.push(res.loops.length + " symlink loop(s) skipped");
    if (!parts.length) parts.push("nothing changed");
    var head = "Scan done" + (res.canceled ? " (canceled)" : "") + ": " + parts.join(", ");
    if (typeof res.files_seen === "number") head += " (" + res.files_seen + " files seen)";
    return head + ((res.errors || []).length ? ":" : ".");
  }

  function showScanSummary(res) {
    var box = $("scan-summary");
    if (!box) return;
    $("scan-summary-text").textContent = scanSummary(res);
    var list = $("scan-summary-errors");
    list.textContent = "";
    (res.errors || []).concat(res.unreadable || []).forEach(function (e) {
      var item = document.createElement("li");
      var code = document.createElement("code");
      code.textContent = e.path || "";
      item.appendChild(code);
      item.appendChild(document.createTextNode(" — " + (e.error || "error")));
      list.appendChild(item);
    });
    var more = (res.errors_total || 0) - (res.errors || []).length;
    if (more > 0) list.appendChild(li("… and " + more + " more (see each LoRA's scan error).", "muted"));
    list.hidden = !list.children.length;
    box.hidden = false;
  }

  var stored = null;
  try { stored = sessionStorage.getItem(SCAN_KEY); sessionStorage.removeItem(SCAN_KEY); } catch (e) { /* ignore */ }
  if (stored) {
    try { showScanSummary(JSON.parse(stored)); } catch (e) { /* ignore a bad value */ }
  }
  if ($("scan-summary-close")) $("scan-summary-close").addEventListener("click", function () {
    $("scan-summary").hidden = true;
  });

  /* ---------- Civitai refresh all ---------- */

  var refreshBtn = $("refresh-all-btn");
  if (refreshBtn) refreshBtn.addEventListener("click", function () {
    refreshBtn.disabled = true;
    var bar = $("scan-bar");
    var text = $("scan-text");
    L.api("POST", "/api/loras/civitai/refresh-all/", { only_missing: false }).then(function (r) {
      if (!r.ok) { refreshBtn.disabled = false; L.showError(L.errorMessage(r, "Could not start the Civitai refresh")); return; }
      $("scan-progress").hidden = false;
      text.textContent = "Refreshing from Civitai…";
      L.followJob(String(r.data.job), r.data.ws_url, root.dataset.apiJobs, function (job) {
        if (job.total_steps) { bar.max = job.total_steps; bar.value = job.step || 0; }
        if (job.status === "succeeded") {
          var res = job.result || {};
          $("scan-progress").hidden = true;
          refreshBtn.disabled = false;
          L.showNotice("Civitai refresh done: " + (res.updated || 0) + " updated, " +
            (res.not_found || 0) + " not on Civitai, " + (res.failed || 0) + " failed.");
        } else if (job.status === "failed" || job.status === "canceled") {
          $("scan-progress").hidden = true;
          refreshBtn.disabled = false;
          L.showError((job.error && job.error.message) || "The Civitai refresh stopped.");
        } else {
          text.textContent = "Refreshing from Civitai · " + (job.message || job.status);
        }
      });
    });
  });

  /* ---------- auto-organize: plan, then apply or discard ---------- */

  var organizeBtn = $("organize-btn");
  var planBox = $("organize-plan");
  function renderPlan(plan) {
    var moves = plan.moves || [];
    var conflicts = plan.conflicts || [];
    $("organize-summary").textContent = moves.length
      ? moves.length + " file" + (moves.length === 1 ? "" : "s") + " would move" +
        (conflicts.length ? ", " + conflicts.length + " cannot:" : ":")
      : "Nothing to move" + (conflicts.length ? "; " + conflicts.length + " cannot:" : ": every file is where the plan puts it.");
    var body = $("organize-moves");
    body.textContent = "";
    moves.forEach(function (m) {
      var tr = document.createElement("tr");
      [m.from, "→", m.to].forEach(function (t, i) {
        var td = document.createElement("td");
        if (i === 1) { td.className = "arrow"; td.textContent = t; }
        else { var c = document.createElement("code"); c.textContent = t; td.appendChild(c); }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    body.closest("table").hidden = !moves.length;
    var cl = $("organize-conflicts");
    cl.textContent = "";
    conflicts.forEach(function (c) {
      cl.appendChild(li(c.from + (c.to ? " → " + c.to : "") + ": " + (c.message || c.code)));
    });
    cl.hidden = !conflicts.length;
    if ($("organize-apply")) $("organize-apply").disabled = !moves.length;
    planBox.hidden = false;
  }
  if (organizeBtn) organizeBtn.addEventListener("click", function () {
    organizeBtn.disabled = true;
    L.api("POST", "/api/loras/auto-organize/?dry_run=1", {}).then(function (r) {
      organizeBtn.disabled = false;
      if (!r.ok) { L.showError(L.errorMessage(r, "Could not plan the organize")); return; }
      renderPlan(r.data || {});
      planBox.scrollIntoView({ block: "nearest" });
    });
  });
  if ($("organize-discard")) $("organize-discard").addEventListener("click", function () {
    planBox.hidden = true;
  });
  if ($("organize-apply")) $("organize-apply").addEventListener("click", function () {
    var btn = this;
    btn.disabled = true;
    L.api("POST", "/api/loras/auto-organize/", {}).then(function (r) {
      if (!r.ok) { btn.disabled = false; L.showError(L.errorMessage(r, "Could not organize")); return; }
      $("organize-summary").textContent = "Moving files…";
      L.followJob(String(r.data.job), r.data.ws_url, root.dataset.apiJobs, function (job) {
        if (job.status === "succeeded") {
          var res = job.result || {};
          planBox.hidden = true;
          L.showNotice("Organized: " + (res.moved || []).length + " moved" +
            ((res.conflicts || []).length ? ", " + res.conflicts.length + " left in place." : ".") + " Reload to see the folders.");
        } else if (job.status === "failed" || job.status === "canceled") {
          btn.disabled = false;
          L.showError((job.error && job.error.message) || "The organize stopped.");
        } else {
          $("organize-summary").textContent = "Moving files · " + (job.message || job.status);
        }
      });
    });
  });
})();
