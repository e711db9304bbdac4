/* Atelier generate page, PNG Info: an image dropped on the page, pasted, or chosen is sent to
 * POST /api/png-info/ (multipart "image"); the generation parameters it answers fill the form
 * (prompt, negative prompt, steps, sampler, schedule type, CFG scale, seed, size, clip skip,
 * hires fix) and the LoRAs the library lacks are listed with a Civitai download or link.
 * On the "Image to image" tab a dropped or pasted image becomes the source image instead. */
(function () {
  "use strict";

  var gen = window.Atelier && window.Atelier.gen;
  if (!gen) return;
  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;
  var form = gen.form;
  var field = gen.field;
  var box = $("pnginfo-result");
  var summary = $("pnginfo-summary");
  var missingList = $("pnginfo-missing");
  var rawBox = $("pnginfo-raw");
  var drop = $("pnginfo-drop");

  function show(text, isError) {
    box.hidden = false;
    box.classList.toggle("pnginfo-error", !!isError);
    summary.textContent = text;
  }

  function first(obj, keys) {
    for (var i = 0; i < keys.length; i++) {
      var v = obj[keys[i]];
      if (v !== undefined && v !== null && v !== "") return v;
    }
    return null;
  }

  /* Set a form field and say whether it was given. */
  function put(name, value) {
    if (value === null || value === undefined || value === "") return false;
    var el = field(name);
    if (!el) return false;
    if (el.type === "checkbox") el.checked = !!value;
    else if (el.tagName === "SELECT") gen.setSelect(el, value);
    else el.value = String(value);
    return true;
  }

  /* Select the profile the resolved checkpoint belongs to, when the answer names one. */
  function selectModel(model) {
    if (!model || !model.found) return false;
    var slug = model.profile || model.slug || (model.profile_slug) || "";
    var sel = field("model");
    if (!slug || !sel) return false;
    for (var i = 0; i < sel.options.length; i++) {
      if (sel.options[i].value === slug) {
        sel.selectedIndex = i;
        gen.applyProfile(gen.selectedProfile(), false);
        return true;
      }
    }
    return false;
  }

  /* Fill the form from the answer's ``parameters``; returns the names of the fields set. */
  function fill(p, resources) {
    var set = [];
    var mark = function (name, value) { if (put(name, value)) set.push(name); };
    selectModel(resources && resources.model);
    mark("prompt", p.prompt);
    if (p.negative_prompt !== undefined && p.negative_prompt !== null) {
      field("negative_prompt").value = p.negative_prompt;
      set.push("negative_prompt");
    }
    mark("steps", p.steps);
    mark("guidance_scale", first(p, ["cfg_scale", "guidance_scale"]));
    mark("seed", p.seed);
    mark("width", p.width);
    mark("height", p.height);
    var sampler = first(p, ["sampler", "sampler_name"]);
    if (sampler !== null) mark("sampler", sampler);
    else put("sampler", "");
    put("scheduler", first(p, ["scheduler", "schedule_type"]) || "");
    set.push("scheduler");
    mark("clip_skip", p.clip_skip || 1);
    var hrScale = first(p, ["hr_scale", "hires_upscale"]);
    var hr = p.enable_hr === undefined || p.enable_hr === null ? hrScale !== null : !!p.enable_hr;
    field("enable_hr").checked = hr;
    set.push("enable_hr");
    if (hr) {
      mark("hr_scale", hrScale);
      mark("hr_upscaler", first(p, ["hr_upscaler", "hires_upscaler"]));
      mark("hr_second_pass_steps", first(p, ["hr_second_pass_steps", "hires_steps"]) || 0);
      mark("denoising_strength", first(p, ["denoising_strength", "hr_denoising_strength"]));
    }
    // The file's LoRAs are <lora:...> tags in its prompt: rows of the last request would add
    // them twice (or add others).
    document.querySelectorAll("#lora-list .lora-row").forEach(function (r) { r.remove(); });
    if (gen.updateHires) gen.updateHires();
    if (gen.markPreset) gen.markPreset();
    if (gen.describeSampler) gen.describeSampler();
    if (gen.saveSettings) gen.saveSettings();
    return set;
  }

  function download(button, versionId) {
    button.disabled = true;
    button.textContent = "Starting…";
    api("POST", form.dataset.apiDownloads, { model_version_id: versionId }).then(function (r) {
      if (r.ok) {
        button.textContent = "Downloading — see the LoRA page";
      } else {
        button.disabled = false;
        button.textContent = "Download";
        button.title = (r.data && r.data.message) || ("HTTP " + r.status);
        var err = document.createElement("small");
        err.className = "field-error";
        err.textContent = (r.data && r.data.message) || ("Download failed (HTTP " + r.status + ").");
        button.insertAdjacentElement("afterend", err);
      }
    }, function () {
      button.disabled = false;
      button.textContent = "Download";
    });
  }

  function listMissing(resources) {
    missingList.textContent = "";
    var loras = (resources && resources.loras) || [];
    var model = resources && resources.model;
    var rows = loras.filter(function (l) { return !l.found; }).map(function (l) {
      return { kind: "LoRA", item: l };
    });
    if (model && model.found === false && (model.name || model.hash)) {
      rows.unshift({ kind: "Checkpoint", item: model });
    }
    rows.forEach(function (row) {
      var l = row.item;
      var li = document.createElement("li");
      li.className = "pnginfo-missing-item";
      li.dataset.name = l.name || "";
      var label = document.createElement("span");
      label.textContent = row.kind + " not in the library: " + (l.name || "?") +
        (l.hash ? " (hash " + l.hash + ")" : "");
      li.appendChild(label);
      var version = l.civitai_version_id || l.model_version_id || null;
      if (version && row.kind === "LoRA") {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "small pnginfo-download";
        b.textContent = "Download";
        b.addEventListener("click", function () { download(b, version); });
        li.appendChild(b);
      }
      var url = l.civitai_url || l.civitai_lookup_url;
      if (url) {
        var a = document.createElement("a");
        a.href = url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        a.className = "pnginfo-civitai";
        a.textContent = l.civitai_url ? "Civitai page" : "Look up on Civitai";
        li.appendChild(a);
      }
      missingList.appendChild(li);
    });
    return rows.length;
  }

  var lastFile = null;
  var toImg2img = $("pnginfo-to-img2img");
  toImg2img.addEventListener("click", function () {
    if (!lastFile) return;
    gen.setMode("img2img");
    gen.setSourceImage(lastFile);
  });

  function readInfo(file) {
    if (!file) return;
    lastFile = file;
    toImg2img.hidden = false;
    var fd = new FormData();
    fd.append("image", file, file.name || "image.png");
    show("Reading " + (file.name || "the image") + "…", false);
    missingList.textContent = "";
    rawBox.textContent = "";
    gen.post(form.dataset.apiPnginfo, fd).then(function (r) {
      var d = r.data || {};
      if (r.status === 404 && !d.code) {
        show("PNG Info is not available on this server.", true);
        return;
      }
      if (!r.ok) {
        show(d.message || ("PNG Info failed (HTTP " + r.status + ")."), true);
        return;
      }
      rawBox.textContent = d.raw || "";
      if (!d.parameters || !Object.keys(d.parameters).length) {
        show(d.message || "No generation parameters found in this image.", true);
        return;
      }
      var set = fill(d.parameters, d.resources);
      var missing = listMissing(d.resources);
      show("Filled " + set.length + " fields from " + (d.generator || "the image") + "'s parameters" +
        (missing ? " · " + missing + " missing from the library" : "") + ".", false);
      form.dispatchEvent(new CustomEvent("atelier:pnginfo", { detail: d }));
    }, function () {
      show("Could not reach the server.", true);
    });
  }
  gen.readPngInfo = readInfo;

  $("pnginfo-file").addEventListener("change", function (ev) {
    if (ev.target.files && ev.target.files[0]) readInfo(ev.target.files[0]);
    ev.target.value = "";
  });
  $("pnginfo-close").addEventListener("click", function () { box.hidden = true; });

  /* ---------- drop and paste anywhere on the page ---------- */

  function imageFile(list) {
    if (!list) return null;
    for (var i = 0; i < list.length; i++) {
      var f = list[i].getAsFile ? (list[i].kind === "file" ? list[i].getAsFile() : null) : list[i];
      if (f && /^image\//.test(f.type)) return f;
    }
    return null;
  }

  function take(file) {
    if (form.dataset.mode === "img2img") gen.setSourceImage(file);
    else readInfo(file);
  }

  var depth = 0;
  function hasFiles(ev) {
    return ev.dataTransfer && Array.prototype.indexOf.call(ev.dataTransfer.types || [], "Files") !== -1;
  }
  document.addEventListener("dragenter", function (ev) {
    if (!hasFiles(ev)) return;
    depth++;
    document.body.classList.add("dragging-file");
  });
  document.addEventListener("dragleave", function () {
    depth = Math.max(0, depth - 1);
    if (!depth) document.body.classList.remove("dragging-file");
  });
  document.addEventListener("dragover", function (ev) {
    if (hasFiles(ev)) { ev.preventDefault(); ev.dataTransfer.dropEffect = "copy"; }
  });
  document.addEventListener("drop", function (ev) {
    depth = 0;
    document.body.classList.remove("dragging-file");
    if (!ev.dataTransfer || !ev.dataTransfer.files || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    var file = imageFile(ev.dataTransfer.files);
    if (file) take(file);
    else if (drop) show("Drop a PNG, JPEG or WebP image.", true);
  });
  document.addEventListener("paste", function (ev) {
    var file = ev.clipboardData ? imageFile(ev.clipboardData.items || ev.clipboardData.files) : null;
    if (!file) return;  // text pastes go where they were meant to
    ev.preventDefault();
    take(file);
  });
})();
