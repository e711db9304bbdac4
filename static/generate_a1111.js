/* Atelier generate page, the A1111 controls (issue 13): sampler and schedule type (lists from
 * GET /api/samplers/ and GET /api/schedulers/), clip skip, VAE, hires fix, aspect-ratio
 * presets, "reuse last seed", Ctrl+Enter to generate, and the request fields they add to
 * POST /api/generate/ (A1111 API names: sampler, scheduler, clip_skip, vae, enable_hr,
 * hr_scale, hr_upscaler, hr_second_pass_steps, denoising_strength). */
(function () {
  "use strict";

  var gen = window.Atelier && window.Atelier.gen;
  if (!gen) return;
  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;
  var form = gen.form;
  var field = gen.field;

  /* ---------- sampler and schedule type lists ---------- */

  /* Select ``value`` in ``select``; a value the list lacks is added (marked) so that the server
     names the allowed ones rather than the page silently picking another. */
  function setSelect(select, value) {
    if (!select) return;
    value = value === null || value === undefined ? "" : String(value);
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === value) { select.selectedIndex = i; return; }
    }
    var lower = value.toLowerCase();
    for (var j = 0; j < select.options.length; j++) {
      if (select.options[j].value.toLowerCase() === lower) { select.selectedIndex = j; return; }
    }
    var opt = document.createElement("option");
    opt.value = value;
    opt.textContent = value + " (not in the list)";
    opt.dataset.unlisted = "1";
    select.appendChild(opt);
    select.value = value;
  }
  gen.setSelect = setSelect;

  /* The label of one list entry: a string, or {label|name} (the shapes of /api/samplers/,
     /api/schedulers/ and /api/vaes/, as A1111's /sdapi/v1 lists). */
  function entryLabel(item) {
    if (typeof item === "string") return item;
    return item ? String(item.label || item.name || "") : "";
  }

  /* Fill ``select`` (keeping its first, default option) from GET ``url``; entries with
     ``supported: false`` (A1111 names diffusers cannot run) are listed disabled with the
     reason. Resolves true when the list came. */
  var samplerMeta = {};  // label -> the /api/samplers/ entry

  function loadList(select, url, skip) {
    if (!select || !url) return Promise.resolve(false);
    return api("GET", url).then(function (r) {
      if (!r.ok || !r.data) return false;
      var items = Array.isArray(r.data) ? r.data : (r.data.results || []);
      if (select.id === "id_sampler") {
        items.forEach(function (item) { samplerMeta[entryLabel(item)] = item; });
      }
      var wanted = select.value;
      while (select.options.length > 1) select.remove(1);
      items.forEach(function (item) {
        var label = entryLabel(item);
        if (!label || label === skip) return;
        var opt = document.createElement("option");
        opt.value = label;
        opt.textContent = label;
        if (item && item.supported === false) {
          opt.disabled = true;
          opt.dataset.unsupported = "1";
          opt.textContent = label + " (not available)";
          opt.title = item.reason || "";
        }
        select.appendChild(opt);
      });
      if (wanted) setSelect(select, wanted);
      return true;
    }, function () { return false; });
  }

  var samplerSelect = $("id_sampler");
  var schedulerSelect = $("id_scheduler");
  var vaeSelect = $("id_vae");
  var samplerInfo = $("sampler-info");
  gen.listsReady = Promise.all([
    loadList(samplerSelect, form.dataset.apiSamplers, ""),
    loadList(schedulerSelect, form.dataset.apiSchedulers, "Automatic"),
    loadList(vaeSelect, form.dataset.apiVaes, "Automatic"),
  ]).then(function (ok) {
    if (samplerInfo && (!ok[0] || !ok[1])) {
      samplerInfo.textContent = "The sampler list is not available from this server; the " +
        "model's default sampler is used.";
    }
    describeSampler();
    var vaeInfo = $("vae-info");
    if (vaeInfo && ok[2] && vaeSelect.options.length <= 1) {
      vaeInfo.textContent = "No VAE in the server's VAE folder: the model's own is used.";
    } else if (vaeInfo && !ok[2]) {
      vaeInfo.textContent = "The VAE list is not available from this server.";
    }
  });

  /* The schedule types the chosen sampler runs with (others disabled) and what "Automatic"
     means for it (A1111's default schedule of the sampler). */
  function describeSampler() {
    if (!schedulerSelect) return;
    var meta = samplerMeta[samplerSelect.value] || null;
    var allowed = meta && meta.schedule_types && meta.schedule_types.length ? meta.schedule_types : null;
    Array.prototype.forEach.call(schedulerSelect.options, function (opt, i) {
      if (i === 0) {
        var d = meta && meta.default_schedule_type;
        opt.textContent = d && d !== "Automatic" ? "Automatic (" + d + ")" : "Automatic";
        return;
      }
      opt.disabled = !!opt.dataset.unsupported || (!!allowed && allowed.indexOf(opt.value) === -1);
    });
    if (samplerInfo && meta && meta.supported === false) {
      samplerInfo.textContent = meta.name + ": " + (meta.reason || "not available here.");
    } else if (samplerInfo && samplerSelect.options.length > 1) {
      samplerInfo.textContent = "";
    }
  }
  gen.describeSampler = describeSampler;
  if (samplerSelect) samplerSelect.addEventListener("change", describeSampler);

  /* ---------- request fields ---------- */

  function num(name, parse) {
    var el = field(name);
    if (!el) return null;
    var raw = String(el.value || "").trim();
    if (raw === "") return null;
    var v = parse(raw);
    return isNaN(v) ? raw : v;
  }
  var int = function (v) { return parseInt(v, 10); };

  gen.bodyHooks.push(function (body) {
    if (samplerSelect && samplerSelect.value) body.sampler = samplerSelect.value;
    if (schedulerSelect && schedulerSelect.value) body.scheduler = schedulerSelect.value;
    var clip = num("clip_skip", int);
    if (clip !== null) body.clip_skip = clip;
    if (vaeSelect && vaeSelect.value) body.vae = vaeSelect.value;
    var hr = field("enable_hr");
    body.enable_hr = !!(hr && hr.checked && form.dataset.mode === "txt2img");
    if (body.enable_hr) {
      body.hr_scale = num("hr_scale", parseFloat);
      body.hr_upscaler = field("hr_upscaler").value;
      body.hr_second_pass_steps = num("hr_second_pass_steps", int);
      body.denoising_strength = num("denoising_strength", parseFloat);
      ["hr_scale", "hr_second_pass_steps", "denoising_strength"].forEach(function (k) {
        if (body[k] === null) delete body[k];
      });
    }
  });

  /* ---------- hires fix ---------- */

  var hrBox = field("enable_hr");
  var hrFields = $("hires-fields");
  var hrSize = $("hires-size");

  function updateHires() {
    if (!hrBox) return;
    hrFields.hidden = !hrBox.checked;
    var w = parseInt(field("width").value, 10);
    var h = parseInt(field("height").value, 10);
    var s = parseFloat(field("hr_scale").value);
    // The second pass's size as providers/hires.py hires_size computes it (A1111 works in
    // latents of 8 pixels): int(side * scale) rounded down to a multiple of 8, at least 8.
    if (!(hrBox.checked && w > 0 && h > 0 && s > 0)) { hrSize.textContent = ""; return; }
    var tw = Math.max(8, Math.floor(Math.floor(w * s) / 8) * 8);
    var th = Math.max(8, Math.floor(Math.floor(h * s) / 8) * 8);
    var opt = gen.selectedProfile();
    var maxW = opt ? parseInt(opt.dataset.maxWidth, 10) : 0;
    var maxH = opt ? parseInt(opt.dataset.maxHeight, 10) : 0;
    var over = (maxW && tw > maxW) || (maxH && th > maxH);
    hrSize.textContent = "→ " + tw + "×" + th + (over ? " · over the model's " + maxW + "×" + maxH : "");
    hrSize.classList.toggle("hires-over", !!over);
  }
  gen.updateHires = updateHires;
  if (hrBox) {
    ["enable_hr", "hr_scale", "width", "height"].forEach(function (name) {
      field(name).addEventListener("input", updateHires);
      field(name).addEventListener("change", updateHires);
    });
    updateHires();
  }

  /* ---------- aspect presets ---------- */

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  /* Width and height of ratio "a:b" with the area of the profile's default size (its base
     resolution: 512×512 for SD 1.5, 1024×1024 for SDXL), multiples of 8, scaled down to fit
     the profile's maximum size. */
  function presetSize(ratio) {
    var opt = gen.selectedProfile();
    var d = opt ? opt.dataset : {};
    var base = Math.max(64, (parseInt(d.width, 10) || 512) * (parseInt(d.height, 10) || 512));
    var parts = ratio.split(":");
    var r = parseFloat(parts[0]) / parseFloat(parts[1]);
    var w = Math.sqrt(base * r);
    var h = w / r;
    var maxW = parseInt(d.maxWidth, 10) || 4096;
    var maxH = parseInt(d.maxHeight, 10) || 4096;
    var shrink = Math.min(1, maxW / w, maxH / h);
    w *= shrink;
    h *= shrink;
    return [clamp(Math.round(w / 8) * 8, 8, Math.floor(maxW / 8) * 8),
            clamp(Math.round(h / 8) * 8, 8, Math.floor(maxH / 8) * 8)];
  }
  gen.presetSize = presetSize;

  function markPreset() {
    var w = field("width").value;
    var h = field("height").value;
    document.querySelectorAll("#aspect-presets .aspect").forEach(function (b) {
      var size = presetSize(b.dataset.ratio);
      b.setAttribute("aria-pressed", String(String(size[0]) === w && String(size[1]) === h));
      b.title = "Width:height " + b.dataset.ratio + " → " + size[0] + "×" + size[1];
    });
  }

  function setSize(w, h) {
    field("width").value = w;
    field("height").value = h;
    field("width").dispatchEvent(new Event("input", { bubbles: true }));
    markPreset();
    updateHires();
  }

  document.querySelectorAll("#aspect-presets .aspect").forEach(function (b) {
    b.addEventListener("click", function () {
      var size = presetSize(b.dataset.ratio);
      setSize(size[0], size[1]);
    });
  });
  var swap = $("size-swap");
  if (swap) swap.addEventListener("click", function () {
    setSize(field("height").value, field("width").value);
  });
  ["width", "height"].forEach(function (n) { field(n).addEventListener("input", markPreset); });
  $("id_model").addEventListener("change", function () { markPreset(); updateHires(); });
  gen.markPreset = markPreset;
  markPreset();

  /* ---------- reuse last seed ---------- */

  var reuse = $("seed-reuse");
  function lastSeed() {
    if (reuse && reuse.dataset.seed) return reuse.dataset.seed;
    var item = document.querySelector("#recent-strip .strip-item[data-seed]");
    return item ? item.dataset.seed : "";
  }
  function updateReuse() { if (reuse) reuse.disabled = !lastSeed(); }
  if (reuse) {
    reuse.addEventListener("click", function () {
      var s = lastSeed();
      if (!s) return;
      field("seed").value = s;
      field("seed").dispatchEvent(new Event("input", { bubbles: true }));
    });
    updateReuse();
  }
  form.addEventListener("atelier:images", function (ev) {
    var images = ev.detail || [];
    if (reuse && images.length && images[0].seed !== undefined && images[0].seed !== null) {
      reuse.dataset.seed = String(images[0].seed);
      updateReuse();
    }
  });

  /* ---------- Ctrl+Enter ---------- */

  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter" || !(ev.ctrlKey || ev.metaKey) || ev.altKey) return;
    var btn = $("generate-btn");
    if (!btn || btn.disabled) return;
    ev.preventDefault();
    if (form.requestSubmit) form.requestSubmit(btn);
    else btn.click();
  });
})();
