/* Atelier LoRA detail page (/loras/<id>/): editors, Civitai refresh / relink / update, file
 * actions through /api/loras/<id>/. Loaded after loras.js (helpers in window.AtelierLoras). */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var L = window.AtelierLoras;
  if (!L) return;
  var api = L.api, followJob = L.followJob, errorMessage = L.errorMessage;
  var showError = L.showError, showNotice = L.showNotice, hideBox = L.hideBox;
  var toggleFavorite = L.toggleFavorite, confirmDialog = L.confirmDialog;
  var undoButton = L.undoButton, applyBlur = L.applyBlur, blurEnabled = L.blurEnabled;

  function initDetail(root) {
    var id = root.dataset.id;
    var url = root.dataset.apiLora;
    applyBlur(blurEnabled());
    var fig = $("preview-figure");
    if (fig) fig.addEventListener("click", function () { fig.classList.remove("blur-nsfw"); });

    $("fav-toggle").addEventListener("click", function () { toggleFavorite(this, id); });

    function splitList(value) {
      return value.split(",").map(function (t) { return t.trim(); }).filter(Boolean);
    }

    function action(btn, method, path, body, done) {
      btn.disabled = true;
      api(method, url + path, body).then(function (r) {
        btn.disabled = false;
        if (r.ok) done(r.data || {});
        else showError(errorMessage(r, "Could not " + (btn.textContent || "do that").toLowerCase()));
      });
    }
    function on(elId, handler) { var el = $(elId); if (el) el.addEventListener("click", handler); }

    if ($("edit-form")) $("edit-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var state = $("save-state");
      var weightRaw = $("edit-weight").value.trim();
      var body = {
        tags: splitList($("edit-tags").value),
        trigger_words: splitList($("edit-triggers").value),
        notes: $("edit-notes").value,
        preferred_weight: weightRaw === "" ? null : Number(weightRaw),
      };
      // Sent only when changed: a base model the user sets wins over the file and Civitai.
      var baseInput = $("edit-base-model");
      if (baseInput.value.trim() !== baseInput.defaultValue.trim()) body.base_model = baseInput.value.trim();
      $("save-btn").disabled = true;
      state.textContent = "Saving…";
      api("PATCH", url, body).then(function (r) {
        $("save-btn").disabled = false;
        if (r.ok) {
          state.textContent = "Saved";
          hideBox($("lora-error"));
          if (r.data && Array.isArray(r.data.tags)) $("edit-tags").value = r.data.tags.join(", ");
          if (r.data && Array.isArray(r.data.trigger_words)) $("edit-triggers").value = r.data.trigger_words.join(", ");
          if (r.data && typeof r.data.base_model === "string") {
            $("edit-base-model").value = r.data.base_model;
            $("edit-base-model").defaultValue = r.data.base_model;
          }
        } else {
          state.textContent = "";
          var d = r.data || {};
          var fieldMsgs = d.fields ? Object.keys(d.fields).map(function (k) { return k + ": " + d.fields[k]; }) : [];
          showError(errorMessage(r, "Could not save") + (fieldMsgs.length ? " " + fieldMsgs.join("; ") : ""));
        }
      });
    });

    if ($("relink-form")) $("relink-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var ref = $("relink-input").value.trim();
      if (!ref) { showError("Give a Civitai model-version URL or id."); return; }
      showNotice("Asking Civitai…");
      var body = /^\d+$/.test(ref) ? { version_id: Number(ref) } : { url: ref };
      action($("relink-btn"), "POST", "civitai-link/", body, function () { location.reload(); });
    });

    on("civitai-refresh", function () {
      showNotice("Asking Civitai…");
      action(this, "POST", "civitai/refresh/", {}, function (d) {
        if (!d.job) { location.reload(); return; } // answered at once, or as a Job to follow
        followJob(String(d.job), d.ws_url, "/api/jobs/", function (job) {
          if (job.status === "succeeded") location.reload();
          else if (job.status === "failed") showError((job.error && job.error.message) || "The Civitai refresh failed.");
        });
      });
    });
    on("download-update-btn", function () {
      action(this, "POST", "download-update/", {}, function (d) {
        showNotice("Downloading the new version next to this file (job " + (d.job || "") + ").");
        if (d.job) followJob(String(d.job), d.ws_url, "/api/jobs/", function (job) {
          if (job.status === "succeeded") showNotice("Downloaded: " + ((job.result && job.result.path) || "done") + ".");
          else if (job.status === "failed") showError((job.error && job.error.message) || "The download failed.");
        });
      });
    });
    on("ignore-version-btn", function () {
      action(this, "POST", "update-ignore/", { version_id: Number(this.dataset.version) }, function () { location.reload(); });
    });
    on("ignore-model-btn", function () {
      action(this, "POST", "update-ignore/", { model: true }, function () { location.reload(); });
    });
    on("restore-btn", function () {
      action(this, "POST", "restore/", {}, function () { location.reload(); });
    });
    on("rename-btn", function () {
      action(this, "POST", "rename/", { name: $("rename-input").value.trim() }, function () { location.reload(); });
    });
    on("move-btn", function () {
      action(this, "POST", "move/", { folder: $("move-input").value.trim() }, function () { location.reload(); });
    });
    on("delete-btn", function () {
      var btn = this;
      confirmDialog(1).then(function (ok) {
        if (!ok) return;
        action(btn, "DELETE", "", undefined, function () {
          showNotice("Moved to the trash.", undoButton([id], function () { location.reload(); }));
          document.querySelectorAll(".file-actions button, #edit-form button").forEach(function (b) {
            if (b.id !== "undo-btn") b.disabled = true;
          });
        });
      });
    });
  }

  var detailRoot = $("lora-detail-page");
  if (detailRoot) initDetail(detailRoot);
})();
