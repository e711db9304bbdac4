/* Atelier generate page: submit to /api/generate/, follow the job over WebSocket
 * (falling back to polling /api/jobs/<id>/), show progress, errors and the images. */
(function () {
  "use strict";

  var form = document.getElementById("generate-form");
  if (!form) return;

  var $ = function (id) { return document.getElementById(id); };
  var modelSelect = $("id_model");
  var profileInfo = $("profile-info");
  var submitBtn = $("generate-btn");
  var progressWrap = $("progress-wrap");
  var progress = $("progress");
  var progressText = $("progress-text");
  var cancelBtn = $("cancel-btn");
  var errorBox = $("error");
  var result = $("result");
  var outputEmpty = $("output-empty");
  var loraList = $("lora-list");
  var loraTemplate = $("lora-row-template");
  var styleSelect = $("id_style");
  var stepPreview = $("step-preview");

  var TERMINAL = { succeeded: 1, failed: 1, canceled: 1 };
  var current = null; // {id, ws, pollTimer, done}

  /* ---------- helpers ---------- */

  var api = window.Atelier.api;
  // Django's JavaScript catalog (/jsi18n/, docs/i18n.md); English without it.
  var gettext = window.gettext || function (s) { return s; };
  var ngettext = window.ngettext || function (one, many, n) { return n === 1 ? one : many; };
  var fmt = function (text, value) { return text.replace("%s", value); };

  function field(name) { return form.elements.namedItem(name); }

  function numberOrNull(name, parse) {
    var el = field(name);
    if (!el) return null;
    var raw = String(el.value || "").trim();
    if (raw === "") return null;
    var v = parse(raw);
    return isNaN(v) ? raw : v; // let the server say what is wrong with a non-number
  }

  /* ---------- model profile defaults ---------- */

  var lastDefaultNegative = null;

  function selectedProfile() {
    return modelSelect && modelSelect.selectedOptions ? modelSelect.selectedOptions[0] : null;
  }

  function applyProfile(opt, fillValues) {
    if (!opt) return;
    var d = opt.dataset;
    if (profileInfo) {
      profileInfo.textContent = d.provider + " · " + d.pipeline + " · max " +
        d.maxWidth + "×" + d.maxHeight;
    }
    renderCapabilities(d);
    field("width").max = d.maxWidth;
    field("height").max = d.maxHeight;
    if (!fillValues) return;
    field("width").value = d.width;
    field("height").value = d.height;
    field("steps").value = d.steps;
    field("guidance_scale").value = d.guidance;
    var neg = field("negative_prompt");
    if (neg.value === "" || neg.value === lastDefaultNegative) neg.value = d.negative || "";
    lastDefaultNegative = d.negative || "";
  }

  var CAP_LABELS = { txt2img: "txt2img", img2img: "img2img", inpaint: "inpaint",
    upscale: gettext("upscale"), loras: "LoRAs", negative_prompt: gettext("negative prompt"),
    seed: gettext("seed"), guidance: "CFG", steps: gettext("steps") };

  /* Badges of what the selected profile's provider can do (server-rendered JSON). */
  function renderCapabilities(d) {
    var list = $("profile-caps");
    if (!list) return;
    list.textContent = "";
    if (d.unavailable) {
      var li = document.createElement("li");
      li.className = "cap cap-off cap-warning";
      li.textContent = fmt(gettext("Provider unavailable: %s"), d.unavailable);
      list.appendChild(li);
      return;
    }
    var caps = {};
    try { caps = JSON.parse(d.capabilities || "{}"); } catch (e) { caps = {}; }
    Object.keys(CAP_LABELS).forEach(function (key) {
      if (!(key in caps)) return;
      var item = document.createElement("li");
      item.className = "cap " + (caps[key] ? "cap-on" : "cap-off");
      item.dataset.cap = key;
      item.textContent = (caps[key] ? "✓ " : "✕ ") + CAP_LABELS[key];
      list.appendChild(item);
    });
    if (caps.max_batch) {
      var b = document.createElement("li");
      b.className = "cap";
      b.textContent = fmt(gettext("batch ≤ %s"), caps.max_batch);
      list.appendChild(b);
      if (field("n")) field("n").max = caps.max_batch;
    }
  }

  if (modelSelect) {
    modelSelect.addEventListener("change", function () {
      applyProfile(selectedProfile(), true);
    });
  }

  /* ---------- LoRA rows ---------- */

  /* Insert ``word`` into the prompt at the caret (or at the end), comma-separated. */
  function insertIntoPrompt(word) {
    var el = field("prompt");
    var v = el.value;
    if (v.indexOf(word) !== -1) return;
    var at = typeof el.selectionStart === "number" && document.activeElement === el ?
      el.selectionStart : v.length;
    var before = v.slice(0, at).replace(/\s+$/, "");
    var after = v.slice(at);
    var sep = before && !/[,(]$/.test(before) ? ", " : "";
    el.value = before + sep + word + (after && !/^\s*,/.test(after) ? ", " : "") + after.replace(/^\s+/, "");
  }

  function setTriggers(row, triggers) {
    var box = row.querySelector(".lora-triggers");
    if (!box) return;
    box.textContent = "";
    (triggers || []).forEach(function (word) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "chip trigger-word";
      b.title = gettext("Insert into the prompt");
      b.textContent = "+ " + word;
      b.addEventListener("click", function () { insertIntoPrompt(word); });
      box.appendChild(b);
    });
  }

  function addLoraRow(name, weight, triggers) {
    var row = loraTemplate.content.firstElementChild.cloneNode(true);
    var nameInput = row.querySelector(".lora-name");
    var slider = row.querySelector(".lora-weight");
    var out = row.querySelector(".lora-weight-value");
    nameInput.value = name || "";
    if (weight !== undefined && weight !== null && !isNaN(weight)) slider.value = weight;
    out.textContent = Number(slider.value).toFixed(2);
    slider.addEventListener("input", function () { out.textContent = Number(slider.value).toFixed(2); });
    row.querySelector(".lora-remove").addEventListener("click", function () { row.remove(); });
    setTriggers(row, triggers);
    loraList.appendChild(row);
    return row;
  }

  $("lora-add").addEventListener("click", function () {
    addLoraRow("", 1).querySelector(".lora-name").focus();
  });

  function collectLoras() {
    var out = [];
    loraList.querySelectorAll(".lora-row").forEach(function (row) {
      var name = row.querySelector(".lora-name").value.trim();
      if (name) out.push({ lora: name, weight: Number(row.querySelector(".lora-weight").value) });
    });
    return out;
  }

  var seedRandom = $("seed-random");
  if (seedRandom) seedRandom.addEventListener("click", function () { field("seed").value = -1; });

  /* ---------- prefill from the query string ---------- */

  function prefillFromQuery() {
    var q = new URLSearchParams(location.search);
    var model = q.get("model");
    if (model && modelSelect) {
      for (var i = 0; i < modelSelect.options.length; i++) {
        if (modelSelect.options[i].value === model) { modelSelect.selectedIndex = i; break; }
      }
    }
    applyProfile(selectedProfile(), true);
    var aliases = { cfg: "guidance_scale", cfg_scale: "guidance_scale", negative: "negative_prompt" };
    ["prompt", "negative_prompt", "width", "height", "steps", "guidance_scale", "seed", "n",
     "cfg", "cfg_scale", "negative"].forEach(function (key) {
      if (q.has(key)) {
        var el = field(aliases[key] || key);
        if (el) el.value = q.get(key);
      }
    });
    // LoRAs as repeated lora=name:weight; skip the ones already tagged in the prompt.
    var prompt = field("prompt").value;
    var specs = q.getAll("lora");
    q.getAll("loras").forEach(function (list) {
      list.split(",").forEach(function (spec) { if (spec.trim()) specs.push(spec.trim()); });
    });
    specs.forEach(function (spec) {
      var idx = spec.lastIndexOf(":");
      var name = idx > 0 ? spec.slice(0, idx) : spec;
      var weight = idx > 0 ? parseFloat(spec.slice(idx + 1)) : 1;
      if (!name || prompt.indexOf("<lora:" + name + ":") !== -1 ||
          prompt.indexOf("<lora:" + name + ">") !== -1) return;
      addLoraRow(name, isNaN(weight) ? 1 : weight);
    });
  }

  /* ---------- errors ---------- */

  function clearErrors() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    if (outputEmpty && !result.children.length && progressWrap.hidden) outputEmpty.hidden = false;
    form.querySelectorAll(".invalid").forEach(function (el) {
      el.classList.remove("invalid");
      el.removeAttribute("aria-invalid");
    });
    form.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
  }

  function flattenMessages(value) {
    if (value === null || value === undefined) return [];
    if (Array.isArray(value)) {
      return value.reduce(function (acc, v) { return acc.concat(flattenMessages(v)); }, []);
    }
    if (typeof value === "object") {
      return Object.keys(value).reduce(function (acc, k) {
        return acc.concat(flattenMessages(value[k]));
      }, []);
    }
    return [String(value)];
  }

  function showError(message, fields) {
    errorBox.textContent = "";
    var strong = document.createElement("strong");
    strong.textContent = gettext("Error: ");
    errorBox.appendChild(strong);
    errorBox.appendChild(document.createTextNode(message || gettext("Something went wrong.")));
    errorBox.hidden = false;
    if (outputEmpty) outputEmpty.hidden = true;
    if (!fields) return;
    var firstInvalid = null;
    Object.keys(fields).forEach(function (name) {
      var el = form.querySelector('[data-field="' + name + '"]') || field(name);
      if (!el || el instanceof RadioNodeList) return;
      el.classList.add("invalid");
      el.setAttribute("aria-invalid", "true");
      var msg = document.createElement("small");
      msg.className = "field-error";
      msg.textContent = flattenMessages(fields[name]).join(" ");
      var container = el.tagName === "FIELDSET" ? el : (el.closest(".field") || el);
      if (container === el) el.insertAdjacentElement("afterend", msg);
      else container.appendChild(msg);
      if (!firstInvalid && el.focus) firstInvalid = el;
    });
    if (firstInvalid) firstInvalid.focus();
  }

  /* ---------- job following ---------- */

  function setBusy(busy) {
    submitBtn.disabled = busy;
    submitBtn.textContent = busy ? gettext("Generating…") : gettext("Generate");
  }

  function formatEta(seconds) {
    if (seconds === null || seconds === undefined) return "";
    var s = Math.max(0, Math.round(seconds));
    return s >= 60 ? fmt(fmt(gettext("ETA %s min %s s"), Math.floor(s / 60)), s % 60) :
      fmt(gettext("ETA %s s"), s);
  }

  function renderImages(images) {
    result.textContent = "";
    form.dispatchEvent(new CustomEvent("atelier:images", { detail: images || [] }));
    (images || []).forEach(function (img) {
      var a = document.createElement("a");
      a.className = "result-item";
      a.href = img.detail_url;
      var el = document.createElement("img");
      el.src = img.url;
      el.width = img.width;
      el.height = img.height;
      el.alt = fmt(gettext("Generated image, seed %s"), img.seed);
      a.appendChild(el);
      var cap = document.createElement("span");
      cap.className = "caption";
      cap.textContent = "seed " + img.seed + " · " + img.width + "×" + img.height;
      a.appendChild(cap);
      result.appendChild(a);
    });
    addToRecent(images || []);
  }

  function addToRecent(images) {
    var strip = $("recent-strip");
    if (!strip || !images.length) return;
    var empty = $("recent-empty");
    if (empty) empty.remove();
    images.slice().reverse().forEach(function (img) {
      var a = document.createElement("a");
      a.className = "strip-item";
      a.href = img.detail_url;
      var el = document.createElement("img");
      el.src = img.thumbnail_url || img.url;
      el.alt = "seed " + img.seed;
      a.appendChild(el);
      strip.insertBefore(a, strip.firstChild);
    });
    strip.scrollLeft = 0;
  }

  function render(job) {
    if (!current || !job || String(job.id) !== String(current.id) || current.done) return;
    if (typeof job.seq === "number") {
      if (current.seq !== undefined && job.seq < current.seq) return; // stale
      current.seq = job.seq;
    }
    var step = job.step || 0;
    var total = job.total_steps || 0;
    var status = job.status;
    progress.value = status === "succeeded" ? 1 : Math.max(0, Math.min(1, job.progress || 0));
    progress.dataset.status = status;
    progressWrap.dataset.status = status;

    var text;
    if (status === "queued") {
      text = gettext("Queued…");
    } else if (status === "running" || status === "paused") {
      text = fmt(fmt(gettext("step %s / %s"), step), total);
      var eta = formatEta(job.eta_seconds);
      if (eta) text += " · " + eta;
      if (status === "paused") text += " · " + gettext("paused");
      if (job.cancel_requested) text += " · " + gettext("canceling…");
    } else if (status === "succeeded") {
      var count = (job.result && job.result.images) ? job.result.images.length : 0;
      text = fmt(fmt(gettext("step %s / %s"), total || step), total || step) + " · " +
        gettext("done") + " · " + fmt(ngettext("%s image", "%s images", count), count);
    } else if (status === "failed") {
      text = gettext("Failed");
    } else if (status === "canceled") {
      text = gettext("Canceled");
    } else {
      text = status || "";
    }
    progressText.textContent = text;
    cancelBtn.hidden = !!TERMINAL[status];
    showPreview(TERMINAL[status] ? null : (job.preview || (job.result && job.result.preview)));

    if (TERMINAL[status]) finish(job);
  }

  /* A step preview from the snapshot: a URL, a data: URL, or bare base64 WebP. */
  function showPreview(preview) {
    if (!stepPreview) return;
    if (!preview) { stepPreview.hidden = true; stepPreview.removeAttribute("src"); return; }
    var src = typeof preview === "object" ? (preview.url || preview.data || "") : String(preview);
    if (!src) return;
    if (!/^(data:|\/|https?:)/.test(src)) src = "data:image/webp;base64," + src;
    stepPreview.src = src;
    stepPreview.hidden = false;
  }

  function finish(job) {
    current.done = true;
    stopFollowing();
    setBusy(false);
    if (job.status === "succeeded") {
      renderImages(job.result && job.result.images);
    } else if (job.status === "failed") {
      var err = job.error || {};
      showError(err.message || gettext("The generation failed."), null);
    }
  }

  function stopFollowing() {
    if (!current) return;
    if (current.pollTimer) { clearTimeout(current.pollTimer); current.pollTimer = null; }
    if (current.ws) {
      var ws = current.ws;
      current.ws = null;
      try { ws.close(1000); } catch (e) { /* ignore */ }
    }
  }

  function startPolling(jobId) {
    if (!current || current.id !== jobId || current.done || current.pollTimer) return;
    var tick = function () {
      if (!current || current.id !== jobId || current.done) return;
      api("GET", form.dataset.apiJobs + encodeURIComponent(jobId) + "/").then(function (r) {
        if (!current || current.id !== jobId || current.done) return;
        if (r.ok && r.data) render(r.data);
        else if (r.status === 404 || r.status === 401 || r.status === 403) {
          current.done = true;
          setBusy(false);
          showError((r.data && r.data.message) || gettext("Lost track of the job."), null);
          return;
        }
        if (!current.done) current.pollTimer = setTimeout(tick, 1000);
      }, function () {
        if (current && !current.done) current.pollTimer = setTimeout(tick, 1000);
      });
    };
    current.pollTimer = setTimeout(tick, 0);
  }

  function follow(jobId, wsPath) {
    stopFollowing();
    current = { id: jobId, ws: null, pollTimer: null, done: false };
    if (!("WebSocket" in window)) { startPolling(jobId); return; }
    var scheme = location.protocol === "https:" ? "wss" : "ws";
    var ws;
    try {
      ws = new WebSocket(scheme + "://" + location.host + (wsPath || "/ws/jobs/" + jobId + "/"));
    } catch (e) {
      startPolling(jobId);
      return;
    }
    current.ws = ws;
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg && msg.type === "job") render(msg.job);
    };
    ws.onclose = function () {
      if (current && current.id === jobId && current.ws === ws) current.ws = null;
      if (current && current.id === jobId && !current.done) startPolling(jobId);
    };
  }

  cancelBtn.addEventListener("click", function () {
    if (!current || current.done) return;
    cancelBtn.disabled = true;
    api("POST", form.dataset.apiJobs + encodeURIComponent(current.id) + "/cancel/").then(function (r) {
      cancelBtn.disabled = false;
      if (r.ok && r.data) render(r.data);
      else showError((r.data && r.data.message) || gettext("Could not cancel the job."), null);
    }, function () {
      cancelBtn.disabled = false;
      showError(gettext("Could not reach the server to cancel."), null);
    });
  });

  /* On narrow screens the output sits below the form: bring it into view. */
  function revealOutput() {
    var out = $("output");
    if (!out || !out.getBoundingClientRect) return;
    var top = out.getBoundingClientRect().top;
    if (top > window.innerHeight * 0.8) out.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  /* ---------- submit ---------- */

  /* POST ``payload`` (an object sent as JSON, or a FormData sent as multipart) to ``url``. */
  function post(url, payload) {
    if (!(payload instanceof FormData)) return api("POST", url, payload);
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: payload,
      headers: { "Accept": "application/json", "X-CSRFToken": window.Atelier.csrfToken() },
    }).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { status: resp.status, ok: resp.ok, data: data };
      });
    });
  }

  /* What the other generate_*.js scripts use: they add request fields (bodyHooks), take
     over the request of another tab (requestFor) and learn of finished images. */
  var gen = window.Atelier.gen = {
    form: form, field: field, addLoraRow: addLoraRow, collectLoras: collectLoras,
    applyProfile: applyProfile, selectedProfile: selectedProfile, showError: showError,
    clearErrors: clearErrors, insertIntoPrompt: insertIntoPrompt, post: post,
    bodyHooks: [],  // fn(body): adds fields to the JSON body of POST /api/generate/
    requestFor: null,  // fn(body) -> {url, payload} | {error, fields} | null (txt2img)
  };

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (submitBtn.disabled) return;
    clearErrors();
    var body = {
      prompt: field("prompt").value,
      negative_prompt: field("negative_prompt").value,
      width: numberOrNull("width", function (v) { return parseInt(v, 10); }),
      height: numberOrNull("height", function (v) { return parseInt(v, 10); }),
      steps: numberOrNull("steps", function (v) { return parseInt(v, 10); }),
      guidance_scale: numberOrNull("guidance_scale", parseFloat),
      seed: numberOrNull("seed", function (v) { return parseInt(v, 10); }),
      n: numberOrNull("n", function (v) { return parseInt(v, 10); }),
      loras: collectLoras(),
    };
    if (modelSelect && modelSelect.value) body.model = modelSelect.value;
    if (styleSelect && styleSelect.value) body.style = styleSelect.value;
    if (body.n === null) delete body.n;
    gen.bodyHooks.forEach(function (hook) { hook(body); });
    var req = gen.requestFor ? gen.requestFor(body) : null;
    if (req && req.error) { showError(req.error, req.fields || null); return; }
    var url = req ? req.url : form.dataset.apiGenerate;
    var payload = req ? req.payload : body;

    stopFollowing();
    current = null;
    setBusy(true);
    // No stale "done" from the last job while this request is on its way.
    progress.value = 0;
    progress.dataset.status = "sending";
    progressText.textContent = gettext("Sending…");

    post(url, payload).then(function (r) {
      if (r.status === 202 && r.data && r.data.job) {
        result.textContent = "";
        if (outputEmpty) outputEmpty.hidden = true;
        progress.value = 0;
        progress.dataset.status = "queued";
        progressText.textContent = gettext("Queued…");
        cancelBtn.hidden = false;
        progressWrap.hidden = false;
        revealOutput();
        follow(String(r.data.job), r.data.ws_url);
        if (window.Atelier.refreshQueue) window.Atelier.refreshQueue();
        return;
      }
      setBusy(false);
      var d = r.data || {};
      var msg = d.message || fmt(gettext("Request failed (HTTP %s)."), r.status);
      if (r.status === 401 || r.status === 403) {
        msg = d.message || gettext("You are not logged in.");
      }
      showError(msg, d.fields || null);
    }, function () {
      setBusy(false);
      showError(gettext("Could not reach the server."), null);
    });
  });

  prefillFromQuery();
})();
