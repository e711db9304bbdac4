/* Example images on the LoRA detail page (issue #4): grid from /api/loras/<id>/example-images/,
 * lightbox with meta and "use these settings" (/?prompt=&seed=&lora=), NSFW blur (click to
 * reveal; level kept in localStorage), delete, set as preview, import by file input or drag
 * and drop, local generation, and the bulk downloads panel (polls /api/example-images/status/
 * every 1.5 s while a download is queued, running or paused) with its per-item errors
 * (result.errors: [{item, reason}]), the folder as a path relative to the library root, and
 * the local generation's model profile as a select of existing profiles. No framework. */
(function () {
  "use strict";

  var section = document.getElementById("examples");
  if (!section) return;
  var $ = function (id) { return document.getElementById(id); };
  var loraId = section.dataset.lora;
  var BLUR_KEY = "atelier.examples.blurLevel";
  var ACTIVE = { queued: 1, running: 1, paused: 1 };
  var items = [];
  var current = -1;
  var pollTimer = null;

  function api(method, url, body) {
    return window.Atelier.api(method, url, body).then(null, function () {
      return { status: 0, ok: false, data: null };
    });
  }
  function message(r, fallback) {
    var d = r.data || {};
    return d.message || d.detail || (r.status === 0 ? "Could not reach the server."
      : (fallback || "Request failed") + " (HTTP " + r.status + ").");
  }
  function show(el, text) { el.textContent = text; el.hidden = !text; }
  function error(text) { show($("ex-notice"), ""); show($("ex-error"), text); }
  function notice(text) { show($("ex-error"), ""); show($("ex-notice"), text); }

  /* ---------- NSFW blur ---------- */
  function blurLevel() {
    var stored = localStorage.getItem(BLUR_KEY);
    return parseInt(stored === null ? section.dataset.nsfwLevel : stored, 10) || 0;
  }
  var blurSelect = $("ex-blur-level");
  blurSelect.value = String(blurLevel());
  blurSelect.addEventListener("change", function () {
    localStorage.setItem(BLUR_KEY, blurSelect.value);
    render();
  });
  function blurred(item) { var l = blurLevel(); return l > 0 && item.nsfw_level >= l; }

  /* ---------- grid ---------- */
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function card(item, index) {
    var fig = el("figure", "ex-card" + (blurred(item) ? " nsfw blurred" : ""));
    fig.dataset.id = item.id;
    var img = el("img");
    img.src = item.file_url;
    img.alt = item.prompt ? item.prompt.slice(0, 120) : "Example image " + (index + 1);
    img.loading = "lazy";
    img.addEventListener("click", function () {
      if (fig.classList.contains("blurred")) { fig.classList.remove("blurred"); return; }
      openLightbox(index);
    });
    fig.appendChild(img);
    fig.appendChild(el("span", "badge ex-source", item.source));
    var cap = el("figcaption");
    cap.appendChild(el("span", "ex-prompt", item.prompt || "(no prompt)"));
    if (item.seed !== null) cap.appendChild(el("span", "muted ex-seed", "seed " + item.seed));
    var actions = el("div", "ex-card-actions");
    var use = el("a", "button small", "Use");
    use.href = item.use_url;
    use.title = "Use these settings on the generate page";
    var prev = el("button", "small ghost ex-set-preview", "Preview");
    prev.type = "button";
    prev.title = "Set as the LoRA preview";
    prev.addEventListener("click", function () { setPreview(item, prev); });
    var del = el("button", "small danger ex-delete", "Delete");
    del.type = "button";
    del.addEventListener("click", function () { remove(item, del); });
    actions.appendChild(use); actions.appendChild(prev); actions.appendChild(del);
    cap.appendChild(actions);
    fig.appendChild(cap);
    return fig;
  }

  function render() {
    var grid = $("ex-grid");
    grid.textContent = "";
    items.forEach(function (item, i) { grid.appendChild(card(item, i)); });
    $("ex-empty").hidden = items.length > 0;
    $("ex-count").textContent = items.length ? "(" + items.length + ")" : "";
  }

  function load() {
    return api("GET", "/api/loras/" + loraId + "/example-images/").then(function (r) {
      if (!r.ok) { error(message(r, "Could not load example images")); return; }
      items = r.data || [];
      render();
    });
  }

  function remove(item, btn) {
    if (!window.confirm("Delete this example image? The file is removed.")) return;
    btn.disabled = true;
    api("DELETE", "/api/loras/" + loraId + "/example-images/" + item.id + "/").then(function (r) {
      btn.disabled = false;
      if (r.status !== 204) { error(message(r, "Delete failed")); return; }
      notice("Example image deleted.");
      load();
    });
  }

  function setPreview(item, btn) {
    btn.disabled = true;
    api("POST", "/api/loras/" + loraId + "/example-images/" + item.id + "/set-preview/")
      .then(function (r) {
        btn.disabled = false;
        if (!r.ok) { error(message(r, "Could not set the preview")); return; }
        notice("Preview updated.");
        var img = document.getElementById("preview-img");
        if (img) img.src = "/api/loras/" + loraId + "/preview/?t=" + Date.now();
      });
  }

  /* ---------- lightbox ---------- */
  var box = $("ex-lightbox");
  function row(tbody, label, value) {
    if (value === null || value === undefined || value === "") return;
    var tr = el("tr");
    tr.appendChild(el("th", "", label));
    var td = el("td");
    td.appendChild(el("div", "meta-value", String(value)));
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
  function openLightbox(index) {
    current = index;
    var item = items[index];
    $("ex-lb-img").src = item.file_url;
    $("ex-lb-img").alt = item.prompt || "Example image";
    var tbody = $("ex-lb-params");
    tbody.textContent = "";
    row(tbody, "Prompt", item.prompt);
    row(tbody, "Negative", item.negative_prompt);
    row(tbody, "Seed", item.seed);
    row(tbody, "Steps", item.steps);
    row(tbody, "Sampler", item.sampler);
    row(tbody, "CFG", item.cfg_scale);
    row(tbody, "Size", item.width + " × " + item.height);
    row(tbody, "Source", item.source + (item.civitai_image_id ? " #" + item.civitai_image_id : ""));
    $("ex-lb-use").href = item.use_url;
    if (!box.open) box.showModal();
  }
  $("ex-lb-close").addEventListener("click", function () { box.close(); });
  $("ex-lb-prev").addEventListener("click", function () {
    if (items.length) openLightbox((current - 1 + items.length) % items.length);
  });
  $("ex-lb-next").addEventListener("click", function () {
    if (items.length) openLightbox((current + 1) % items.length);
  });
  box.addEventListener("click", function (ev) { if (ev.target === box) box.close(); });
  box.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowLeft") $("ex-lb-prev").click();
    if (ev.key === "ArrowRight") $("ex-lb-next").click();
  });

  /* ---------- import (file input, drag and drop) ---------- */
  function upload(files) {
    if (!files || !files.length) return;
    var form = new FormData();
    form.append("lora", loraId);
    Array.prototype.forEach.call(files, function (f) { form.append("files", f); });
    notice("Importing " + files.length + " file" + (files.length > 1 ? "s" : "") + "…");
    fetch("/api/example-images/import/", {
      method: "POST", body: form, credentials: "same-origin",
      headers: { "X-CSRFToken": window.Atelier.csrfToken(), "Accept": "application/json" },
    }).then(function (resp) {
      return resp.json().then(null, function () { return null; }).then(function (data) {
        return { status: resp.status, ok: resp.ok, data: data };
      });
    }, function () { return { status: 0, ok: false, data: null }; }).then(function (r) {
      if (!r.ok) { error(message(r, "Import failed")); return; }
      notice("Imported " + r.data.length + " image" + (r.data.length > 1 ? "s" : "") + ".");
      load();
    });
  }
  $("ex-file").addEventListener("change", function (ev) { upload(ev.target.files); ev.target.value = ""; });
  var drop = $("ex-drop");
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (ev) { ev.preventDefault(); drop.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function () { drop.classList.remove("dragging"); });
  });
  drop.addEventListener("drop", function (ev) {
    ev.preventDefault();
    if (ev.dataTransfer && ev.dataTransfer.files) upload(ev.dataTransfer.files);
  });

  /* ---------- folder ---------- */
  $("ex-open-folder").addEventListener("click", function () {
    api("GET", "/api/example-images/open-folder/?lora=" + loraId).then(function (r) {
      if (!r.ok) { error(message(r, "Could not find the folder")); return; }
      var d = r.data;
      notice("Folder: " + (d.path || d.folder) + " — " + (d.exists
        ? d.images + " example image" + (d.images === 1 ? "" : "s") + (d.opened ? ", opened." : ".")
        : "empty so far."));
    });
  });

  /* ---------- local generation ---------- */
  $("ex-generate-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var weights = $("ex-gen-weights").value.split(",").map(function (s) { return parseFloat(s); })
      .filter(function (w) { return !isNaN(w); });
    var body = { weights: weights };
    if ($("ex-gen-model").value) body.model = $("ex-gen-model").value;
    showErrors($("ex-gen-errors"), null, []);
    $("ex-gen-btn").disabled = true;
    api("POST", "/api/loras/" + loraId + "/example-images/generate/", body).then(function (r) {
      $("ex-gen-btn").disabled = false;
      if (!r.ok) { error(message(r, "Could not start the generation")); return; }
      $("ex-gen-state").textContent = "Queued";
      followJob(r.data.id, function (job) {
        $("ex-gen-state").textContent = job.status + (job.message ? ": " + job.message : "") +
          (job.error ? " — " + job.error.message : "");
        var res = job.result || {};
        showErrors($("ex-gen-errors"), null, res.errors || [], res.errors_total);
        if (job.status === "succeeded" || job.status === "failed") load();
      });
    });
  });

  function followJob(id, onUpdate) {
    (function tick() {
      api("GET", "/api/jobs/" + id + "/").then(function (r) {
        if (!r.ok) return;
        onUpdate(r.data);
        if (!{ succeeded: 1, failed: 1, canceled: 1 }[r.data.status]) setTimeout(tick, 1000);
      });
    })();
  }

  /* ---------- per-item errors of a job: result.errors [{item, reason}] ---------- */
  function showErrors(list, summary, errors, total) {
    list.textContent = "";
    errors.forEach(function (e) {
      var li = el("li", "ex-error-item");
      li.appendChild(el("strong", "ex-error-what", String(e.item !== undefined ? e.item : "")));
      li.appendChild(document.createTextNode(": " + (e.reason || e.message || "failed")));
      list.appendChild(li);
    });
    var n = Math.max(total || 0, errors.length);
    if (summary) {
      summary.textContent = n + " error" + (n === 1 ? "" : "s") +
        (n > errors.length ? " (the last " + errors.length + " listed)" : "");
      summary.parentNode.hidden = !errors.length;
    } else {
      list.hidden = !errors.length;
    }
  }

  /* ---------- downloads panel ---------- */
  function renderStatus(s) {
    var panel = $("ex-downloads");
    var job = s.job;
    panel.hidden = false;
    var res = s.result || {};
    var status = s.status;
    $("ex-dl-status").textContent = status === "idle" ? "No download yet" : "Download " + status;
    var parts = [];
    if (res.total_models !== undefined) parts.push((res.processed_models || 0) + "/" + res.total_models + " LoRAs");
    if (res.images !== undefined) parts.push(res.images + " images");
    if (res.current_model) parts.push("now: " + res.current_model);
    if (res.speed) parts.push(res.speed + " img/s");
    if (res.eta_seconds) parts.push("ETA " + Math.round(res.eta_seconds) + " s");
    var errs = res.errors || [];
    var nErr = Math.max(res.errors_total || 0, errs.length);
    // While it runs the count is news; once done the job's message says it.
    if (nErr && ACTIVE[status]) parts.push(nErr + " error" + (nErr === 1 ? "" : "s") + " (below)");
    showErrors($("ex-dl-errors-list"), $("ex-dl-errors-summary"), errs, res.errors_total);
    if (job && job.message) parts.push(job.message);
    if (job && job.error) parts.push(job.error.message);
    $("ex-dl-detail").textContent = parts.join(" · ");
    $("ex-dl-progress").value = job ? job.progress : 0;
    $("ex-dl-pause").hidden = !(status === "running" || status === "queued");
    $("ex-dl-resume").hidden = status !== "paused";
    $("ex-dl-all").hidden = !!ACTIVE[status];
    $("ex-force").disabled = !!ACTIVE[status];
  }

  var lastStatus = "";
  function poll() {
    clearTimeout(pollTimer);
    api("GET", "/api/example-images/status/").then(function (r) {
      if (!r.ok) return;
      renderStatus(r.data);
      if (lastStatus && ACTIVE[lastStatus] && !ACTIVE[r.data.status]) load();
      if (r.data.status === "running" && r.data.result && r.data.result.current === parseInt(loraId, 10)) load();
      lastStatus = r.data.status;
      if (ACTIVE[r.data.status]) pollTimer = setTimeout(poll, 1500);
    });
  }

  function start(url, body) {
    api("POST", url, body).then(function (r) {
      if (!r.ok) { error(message(r, "Could not start the download")); return; }
      notice("Download started.");
      poll();
    });
  }
  $("ex-force").addEventListener("click", function () {
    start("/api/example-images/force/", { lora_id: parseInt(loraId, 10) });
  });
  $("ex-dl-all").addEventListener("click", function () { start("/api/example-images/download/", {}); });
  $("ex-dl-pause").addEventListener("click", function () {
    api("POST", "/api/example-images/pause/").then(function (r) { if (!r.ok) error(message(r)); poll(); });
  });
  $("ex-dl-resume").addEventListener("click", function () {
    api("POST", "/api/example-images/resume/").then(function (r) { if (!r.ok) error(message(r)); poll(); });
  });

  load();
  poll();
})();
