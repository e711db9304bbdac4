/* Atelier LoRA library pages (/loras/; the detail page's code is in loras_detail.js, which
 * uses the helpers exported as window.AtelierLoras): actions through /api/loras/,
 * later pages of the grid, the scan job followed over its WebSocket (polling fallback),
 * the "blur NSFW previews" setting (localStorage, default on). No framework. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var BLUR_KEY = "atelier.loras.blurNsfw";
  var TERMINAL = { succeeded: 1, failed: 1, canceled: 1 };

  /* ---------- helpers ---------- */

  /* JSON fetch (static/api.js); network failures resolve with status 0 here. */
  function api(method, url, body) {
    return window.Atelier.api(method, url, body).then(null, function () {
      return { status: 0, ok: false, data: null };
    });
  }

  function errorMessage(r, fallback) {
    var d = r.data || {};
    if (d.message) return d.message;
    if (d.detail) return d.detail;
    if (r.status === 0) return "Could not reach the server.";
    if (r.status === 404) return (fallback || "Request failed") + ": this action is not available (HTTP 404).";
    return (fallback || "Request failed") + " (HTTP " + r.status + ").";
  }

  function showBox(el, text, extraNode) {
    if (!el) return;
    el.textContent = text;
    if (extraNode) { el.appendChild(document.createTextNode(" ")); el.appendChild(extraNode); }
    el.hidden = false;
  }
  function hideBox(el) { if (el) { el.hidden = true; el.textContent = ""; } }
  function showError(text) { hideBox($("lora-notice")); showBox($("lora-error"), text); }
  function showNotice(text, extraNode) { hideBox($("lora-error")); showBox($("lora-notice"), text, extraNode); }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.appendChild(ta);
    ta.select();
    try { document.execCommand("copy"); } finally { ta.remove(); }
    return Promise.resolve();
  }

  /* Any element with data-copy copies its value and flashes "Copied". */
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    ev.preventDefault();
    copyText(btn.dataset.copy).then(function () {
      btn.classList.add("copied");
      btn.setAttribute("data-copied", "Copied");
      setTimeout(function () { btn.classList.remove("copied"); }, 1200);
    }, function () { showError("Could not copy to the clipboard."); });
  });

  function setFavorite(btn, on) {
    btn.classList.toggle("on", on);
    btn.setAttribute("aria-pressed", on ? "true" : "false");
    btn.textContent = on ? "★" : "☆";
  }

  function toggleFavorite(btn, id) {
    var next = btn.getAttribute("aria-pressed") !== "true";
    setFavorite(btn, next); // optimistic; reverted on failure
    btn.disabled = true;
    return api("PATCH", "/api/loras/" + id + "/", { favorite: next }).then(function (r) {
      btn.disabled = false;
      if (r.ok && r.data && typeof r.data.favorite === "boolean") {
        setFavorite(btn, r.data.favorite);
      } else if (!r.ok) {
        setFavorite(btn, !next);
        showError(errorMessage(r, "Could not change the favorite"));
      }
    });
  }

  /* Undo: restore each trashed id; resolves to the list of failures. */
  function restoreAll(ids) {
    return Promise.all(ids.map(function (id) {
      return api("POST", "/api/loras/" + id + "/restore/").then(function (r) {
        return r.ok ? null : errorMessage(r, "Could not restore #" + id);
      });
    })).then(function (msgs) { return msgs.filter(Boolean); });
  }

  function confirmDialog(count) {
    var dlg = $("confirm-delete");
    if ($("confirm-count")) $("confirm-count").textContent = String(count);
    if ($("confirm-noun")) $("confirm-noun").textContent = count === 1 ? "LoRA" : "LoRAs";
    if (!dlg || typeof dlg.showModal !== "function") {
      return Promise.resolve(window.confirm("Move to the trash? You can undo."));
    }
    return new Promise(function (resolve) {
      dlg.returnValue = "";
      dlg.addEventListener("close", function onClose() {
        dlg.removeEventListener("close", onClose);
        resolve(dlg.returnValue === "ok");
      });
      dlg.showModal();
    });
  }

  function undoButton(ids, after) {
    var btn = document.createElement("button");
    btn.type = "button";
    btn.className = "small";
    btn.id = "undo-btn";
    btn.textContent = "Undo";
    btn.addEventListener("click", function () {
      btn.disabled = true;
      restoreAll(ids).then(function (failures) {
        if (failures.length) showError(failures.join(" "));
        else after();
      });
    });
    return btn;
  }

  /* ---------- NSFW blur setting ---------- */

  function blurEnabled() {
    try { return localStorage.getItem(BLUR_KEY) !== "0"; } catch (e) { return true; }
  }

  function applyBlur(on) {
    document.querySelectorAll("#lora-grid, #preview-figure.nsfw").forEach(function (el) {
      el.classList.toggle("blur-nsfw", on);
    });
  }

  /* ---------- scan job ---------- */

  function followJob(jobId, wsPath, apiJobs, onUpdate) {
    var state = { done: false, ws: null, timer: null, seq: -1 };
    function handle(job) {
      if (state.done || !job || String(job.id) !== String(jobId)) return;
      if (typeof job.seq === "number") { if (job.seq < state.seq) return; state.seq = job.seq; }
      onUpdate(job);
      if (TERMINAL[job.status]) {
        state.done = true;
        if (state.timer) clearTimeout(state.timer);
        if (state.ws) { try { state.ws.close(1000); } catch (e) { /* ignore */ } }
      }
    }
    function poll() {
      if (state.done || state.timer) return;
      var tick = function () {
        state.timer = null;
        if (state.done) return;
        api("GET", apiJobs + encodeURIComponent(jobId) + "/").then(function (r) {
          if (r.ok && r.data) handle(r.data);
          else if (r.status === 404 || r.status === 403) {
            handle({ id: jobId, status: "failed", error: { message: errorMessage(r, "Lost track of the scan") } });
          }
          if (!state.done) state.timer = setTimeout(tick, 1000);
        });
      };
      state.timer = setTimeout(tick, 0);
    }
    if (!("WebSocket" in window)) { poll(); return; }
    try {
      var scheme = location.protocol === "https:" ? "wss" : "ws";
      state.ws = new WebSocket(scheme + "://" + location.host + (wsPath || "/ws/jobs/" + jobId + "/"));
    } catch (e) { poll(); return; }
    state.ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg && msg.type === "job") handle(msg.job);
    };
    state.ws.onclose = function () { state.ws = null; if (!state.done) poll(); };
  }

  function startScan(root, buttons) {
    var bar = $("scan-bar");
    var text = $("scan-text");
    buttons.forEach(function (b) { b.disabled = true; });
    hideBox($("lora-error"));
    api("POST", root.dataset.apiScan, {}).then(function (r) {
      if (!(r.ok && r.data && r.data.job)) {
        buttons.forEach(function (b) { b.disabled = false; });
        showError(errorMessage(r, "Could not start the scan"));
        return;
      }
      $("scan-progress").hidden = false;
      bar.value = 0;
      text.textContent = "Queued…";
      followJob(String(r.data.job), r.data.ws_url, root.dataset.apiJobs, function (job) {
        bar.value = job.status === "succeeded" ? 1 : Math.max(0, Math.min(1, job.progress || 0));
        bar.dataset.status = job.status;
        if (job.status === "succeeded") {
          text.textContent = "Scan done. Reloading…";
          // loras_tools.js shows the summary ("16 new, 6 errors: …") on the reloaded page
          try { sessionStorage.setItem("atelier.loras.scanResult", JSON.stringify(job.result || {})); } catch (e) { /* ignore */ }
          setTimeout(function () { location.reload(); }, 300);
        } else if (job.status === "failed" || job.status === "canceled") {
          buttons.forEach(function (b) { b.disabled = false; });
          text.textContent = job.status === "failed" ? "Failed" : "Canceled";
          if (job.error && job.error.message) showError(job.error.message);
        } else {
          var parts = [job.status === "queued" ? "Queued…" : "Scanning"];
          if (job.total_steps) parts.push((job.step || 0) + " / " + job.total_steps);
          if (job.message) parts.push(job.message);
          text.textContent = parts.join(" · ");
        }
      });
    });
  }

  /* ---------- list page ---------- */

  function initList(root) {
    var grid = $("lora-grid");
    var filters = $("lora-filters");
    var blurToggle = $("blur-nsfw");
    var nsfwLevel = parseInt(root.dataset.nsfwLevel, 10) || 4;

    blurToggle.checked = blurEnabled();
    applyBlur(blurToggle.checked);
    blurToggle.addEventListener("change", function () {
      try { localStorage.setItem(BLUR_KEY, blurToggle.checked ? "1" : "0"); } catch (e) { /* ignore */ }
      applyBlur(blurToggle.checked);
    });

    // Selects and checkboxes filter at once; the tags and search inputs on Enter / Apply.
    filters.querySelectorAll("[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { filters.requestSubmit ? filters.requestSubmit() : filters.submit(); });
    });
    filters.addEventListener("submit", function () {
      // Drop empty parameters so the URL stays readable.
      filters.querySelectorAll("input, select").forEach(function (el) {
        if (el.name && !el.value && el.type !== "checkbox") el.disabled = true;
      });
    });

    var scanButtons = [$("scan-btn")].concat(Array.prototype.slice.call(document.querySelectorAll("[data-scan]")))
      .filter(Boolean);
    if ($("update-check-btn")) $("update-check-btn").addEventListener("click", function () {
      var btn = this;
      btn.disabled = true;
      api("POST", root.dataset.apiLoras + "update-check/", {}).then(function (r) {
        if (!r.ok) { btn.disabled = false; showError(errorMessage(r, "Could not start the update check")); return; }
        showNotice("Checking Civitai for newer versions…");
        followJob(String(r.data.job), r.data.ws_url, root.dataset.apiJobs, function (job) {
          if (job.status === "succeeded") {
            var res = job.result || {};
            showNotice("Update check done: " + (res.flagged || 0) + " update(s) available of " + (res.checked || 0) + " LoRA(s) checked.");
            btn.disabled = false;
          } else if (job.status === "failed") {
            btn.disabled = false;
            showError((job.error && job.error.message) || "The update check failed.");
          }
        });
      });
    });
    scanButtons.forEach(function (b) {
      b.addEventListener("click", function () { startScan(root, scanButtons); });
    });

    if (!grid) return;

    /* cards */
    grid.addEventListener("click", function (ev) {
      var fav = ev.target.closest(".fav-toggle");
      if (fav) { toggleFavorite(fav, fav.closest(".lora-card").dataset.id); }
    });
    grid.addEventListener("change", function (ev) {
      if (ev.target.classList.contains("lora-check")) {
        ev.target.closest(".lora-card").classList.toggle("selected", ev.target.checked);
        updateBulk();
      }
    });

    function buildCard(item) {
      var card = $("lora-card-template").content.firstElementChild.cloneNode(true);
      var url = "/loras/" + item.id + "/";
      card.dataset.id = item.id;
      card.dataset.name = item.name;
      card.dataset.nsfw = item.nsfw_level || 0;
      if ((item.nsfw_level || 0) >= nsfwLevel) card.classList.add("nsfw");
      if (item.status === "missing") card.classList.add("missing");
      var thumb = card.querySelector(".lora-thumb");
      thumb.href = url;
      if (item.preview_url && item.preview_type === "video") {
        var video = document.createElement("video");
        video.muted = true;
        video.loop = true;
        video.playsInline = true;
        video.preload = "metadata";
        video.src = item.preview_url;
        video.setAttribute("aria-label", "Preview of " + item.name);
        thumb.appendChild(video);
      } else if (item.preview_url) {
        var img = document.createElement("img");
        img.loading = "lazy";
        img.decoding = "async";
        img.src = item.preview_url;
        img.alt = "Preview of " + item.name;
        thumb.appendChild(img);
      } else {
        var ph = document.createElement("span");
        ph.className = "lora-placeholder";
        ph.textContent = item.base_model || "LoRA";
        thumb.appendChild(ph);
      }
      var check = card.querySelector(".lora-check");
      if (root.dataset.canManage === "true") check.setAttribute("aria-label", "Select " + item.name);
      else check.closest(".lora-select").remove();
      setFavorite(card.querySelector(".fav-toggle"), !!item.favorite);
      var name = card.querySelector(".lora-name");
      name.href = url;
      name.textContent = item.name;
      name.title = item.relative_path || "";
      var meta = card.querySelector(".lora-meta");
      if (item.base_model) {
        var badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = item.base_model;
        meta.appendChild(badge);
      }
      if (item.update_available) {
        var upd = document.createElement("span");
        upd.className = "badge update";
        upd.title = "A newer Civitai version exists";
        upd.textContent = "update";
        meta.appendChild(upd);
      }
      if (item.scan_error) {
        var broken = document.createElement("span");
        broken.className = "badge danger broken";
        broken.title = item.scan_error;
        broken.textContent = "broken";
        meta.appendChild(broken);
        card.classList.add("broken");
      }
      var w = item.preferred_weight === null || item.preferred_weight === undefined ? 1 : item.preferred_weight;
      var copyTag = card.querySelector(".copy-tag");
      copyTag.dataset.copy = "<lora:" + item.name + ":" + w + ">";
      copyTag.title = "Copy " + copyTag.dataset.copy;
      var civ = card.querySelector(".card-action.civitai");
      if (item.civitai_model_id) {
        civ.href = "https://civitai.com/models/" + item.civitai_model_id +
          (item.civitai_version_id ? "?modelVersionId=" + item.civitai_version_id : "");
      } else civ.remove();
      card.querySelector(".to-generate").href = "/?lora=" + encodeURIComponent(item.name) + ":" + w;
      if (item.folder) {
        var folder = document.createElement("span");
        folder.className = "muted lora-folder";
        folder.textContent = item.folder;
        meta.appendChild(folder);
      }
      var triggers = card.querySelector(".trigger-list");
      (item.trigger_words || []).slice(0, 6).forEach(function (w) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "trigger copy";
        b.dataset.copy = w;
        b.title = "Copy";
        b.textContent = w;
        triggers.appendChild(b);
      });
      if (!triggers.children.length) triggers.remove();
      return card;
    }

    /* later pages: the API with the same filters; the plain link is the no-JS fallback */
    var more = $("load-more");
    if (more) {
      more.addEventListener("click", function (ev) {
        ev.preventDefault();
        var params = new URLSearchParams(location.search);
        params.set("page", more.dataset.nextPage);
        params.set("page_size", "50");
        if (params.get("tags")) params.set("tags_mode", "all");
        more.setAttribute("aria-busy", "true");
        api("GET", root.dataset.apiLoras + "?" + params.toString()).then(function (r) {
          more.removeAttribute("aria-busy");
          if (!r.ok || !r.data || !Array.isArray(r.data.results)) {
            if (r.status === 404 && !(r.data && r.data.code)) { location.href = more.href; return; }
            showError(errorMessage(r, "Could not load more LoRAs"));
            return;
          }
          r.data.results.forEach(function (item) { grid.appendChild(buildCard(item)); });
          var shown = grid.querySelectorAll(".lora-card").length;
          if ($("page-info")) $("page-info").textContent = shown + " of " + r.data.count;
          if (r.data.next) {
            more.dataset.nextPage = String(parseInt(more.dataset.nextPage, 10) + 1);
            params.set("page", more.dataset.nextPage);
            more.href = "?" + params.toString();
          } else {
            more.remove();
          }
        });
      });
    }

    /* bulk selection (library managers only: the bar is not on the page otherwise) */
    var bulkBar = $("bulk-bar");
    if (!bulkBar) return;
    function selectedCards() { return Array.prototype.slice.call(grid.querySelectorAll(".lora-card.selected")); }
    function selectedIds() { return selectedCards().map(function (c) { return parseInt(c.dataset.id, 10); }); }
    function updateBulk() {
      var n = selectedCards().length;
      bulkBar.hidden = n === 0;
      $("bulk-count").textContent = n + " selected";
    }
    function clearSelection() {
      grid.querySelectorAll(".lora-check:checked").forEach(function (c) { c.checked = false; });
      selectedCards().forEach(function (c) { c.classList.remove("selected"); });
      updateBulk();
    }
    $("bulk-clear").addEventListener("click", clearSelection);
    // Boxes ticked before this script ran (a slow load) or restored by the browser count too.
    grid.querySelectorAll(".lora-check:checked").forEach(function (c) {
      c.closest(".lora-card").classList.add("selected");
    });
    updateBulk();

    function reportResults(r, verb) {
      if (!r.ok || !r.data || !Array.isArray(r.data.results)) {
        showError(errorMessage(r, "Could not " + verb));
        return null;
      }
      var okIds = [];
      var failed = [];
      r.data.results.forEach(function (res) {
        if (res.ok) okIds.push(res.id);
        else failed.push("#" + res.id + ": " + (res.message || res.code || "failed"));
      });
      if (failed.length) showError(failed.length + " not done. " + failed.join("; "));
      return okIds;
    }

    $("bulk-move-btn").addEventListener("click", function () {
      var folder = $("bulk-folder").value.trim();
      var btn = this;
      btn.disabled = true;
      api("POST", root.dataset.apiLoras + "bulk-move/", { ids: selectedIds(), folder: folder }).then(function (r) {
        btn.disabled = false;
        var okIds = reportResults(r, "move");
        if (okIds && okIds.length) {
          okIds.forEach(function (id) {
            var card = grid.querySelector('.lora-card[data-id="' + id + '"]');
            var f = card && card.querySelector(".lora-folder");
            if (card && !f) {
              f = document.createElement("span");
              f.className = "muted lora-folder";
              card.querySelector(".lora-meta").appendChild(f);
            }
            if (f) f.textContent = folder;
          });
          if (!$("lora-error") || $("lora-error").hidden) {
            showNotice(okIds.length + " moved to " + (folder || "the root folder") + ".");
          }
          clearSelection();
        }
      });
    });

    $("bulk-delete-btn").addEventListener("click", function () {
      var ids = selectedIds();
      confirmDialog(ids.length).then(function (ok) {
        if (!ok) return;
        api("POST", root.dataset.apiLoras + "bulk-delete/", { ids: ids }).then(function (r) {
          var okIds = reportResults(r, "delete");
          if (!okIds || !okIds.length) return;
          var removed = 0;
          okIds.forEach(function (id) {
            var card = grid.querySelector('.lora-card[data-id="' + id + '"]');
            if (card) { card.remove(); removed += 1; }
          });
          adjustCount(-okIds.length, -removed);
          updateBulk();
          var msg = okIds.length + " moved to the trash.";
          if ($("lora-error").hidden) showNotice(msg, undoButton(okIds, function () { location.reload(); }));
          else $("lora-error").appendChild(document.createTextNode(" " + msg));
        });
      });
    });
  }

  /* The "N LoRAs" count and "shown of total" follow deletes (and undo reloads the page). */
  function adjustCount(total, shownDelta) {
    var el = $("lora-count");
    if (el && el.dataset.count !== undefined) {
      var n = Math.max(0, parseInt(el.dataset.count, 10) + total);
      el.dataset.count = String(n);
      el.textContent = n + (n === 1 ? " LoRA" : " LoRAs");
    }
    var info = $("page-info");
    if (info) {
      var m = /^(\d+) of (\d+)/.exec(info.textContent);
      if (m) info.textContent = Math.max(0, parseInt(m[1], 10) + shownDelta) + " of " +
        Math.max(0, parseInt(m[2], 10) + total);
    }
  }

  window.AtelierLoras = { api: api, adjustCount: adjustCount, followJob: followJob, errorMessage: errorMessage,
    showError: showError, showNotice: showNotice, hideBox: hideBox, toggleFavorite: toggleFavorite,
    confirmDialog: confirmDialog, undoButton: undoButton, applyBlur: applyBlur,
    blurEnabled: blurEnabled };

  var listRoot = $("lora-list-page");
  if (listRoot) initList(listRoot);
})();
