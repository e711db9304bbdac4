/* Atelier generate page: the last settings are kept in this browser (localStorage key
 * "atelier.generate.v1:<user id>", one per account) and restored on the next visit, unless the
 * address carries a prefill (?prompt=..., a "Generate again" link), which wins. "reset"
 * forgets them. */
(function () {
  "use strict";

  var gen = window.Atelier && window.Atelier.gen;
  if (!gen) return;
  var form = gen.form;
  var KEY = "atelier.generate.v1:" + (form.dataset.user || "");
  // A1111 fields a link may carry besides those generate.js reads (A1111 API names).
  var A1111_KEYS = ["sampler", "sampler_name", "scheduler", "clip_skip", "vae", "enable_hr",
    "hr_scale", "hr_upscaler", "hr_second_pass_steps", "denoising_strength"];
  var PREFILL_KEYS = ["prompt", "negative_prompt", "negative", "model", "seed", "steps", "width",
    "height", "cfg", "cfg_scale", "guidance_scale", "lora", "loras", "style", "n"]
    .concat(A1111_KEYS);
  // Saved fields (form element names); file inputs and the CSRF token never are.
  var FIELDS = ["prompt", "negative_prompt", "style", "width", "height", "steps",
    "guidance_scale", "seed", "n", "sampler", "scheduler", "clip_skip", "vae", "enable_hr",
    "hr_scale", "hr_upscaler", "hr_second_pass_steps", "denoising_strength", "strength"];

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  function read() {
    var s = storage();
    if (!s) return null;
    try { return JSON.parse(s.getItem(KEY) || "null"); } catch (e) { return null; }
  }

  function snapshot() {
    var data = { model: gen.field("model") ? gen.field("model").value : "",
      loras: gen.collectLoras() };
    FIELDS.forEach(function (name) {
      var el = gen.field(name);
      if (!el || el instanceof RadioNodeList) return;
      data[name] = el.type === "checkbox" ? el.checked : el.value;
    });
    return data;
  }

  var saveTimer = null;
  function save() {
    clearTimeout(saveTimer);
    var s = storage();
    if (!s) return;
    try { s.setItem(KEY, JSON.stringify(snapshot())); } catch (e) { /* full or denied */ }
  }
  function saveSoon() { clearTimeout(saveTimer); saveTimer = setTimeout(save, 300); }

  /* Fill the form from ``data`` (a snapshot): model first (its limits), then the fields. */
  function apply(data) {
    var model = gen.field("model");
    if (data.model && model) {
      for (var i = 0; i < model.options.length; i++) {
        if (model.options[i].value === data.model) { model.selectedIndex = i; break; }
      }
      gen.applyProfile(gen.selectedProfile(), false);
    }
    FIELDS.forEach(function (name) {
      if (!(name in data) || data[name] === null || data[name] === undefined) return;
      var el = gen.field(name);
      if (!el || el instanceof RadioNodeList) return;
      if (el.type === "checkbox") el.checked = !!data[name];
      else if (el.tagName === "SELECT" && name !== "style") gen.setSelect(el, data[name]);
      else el.value = data[name];
    });
    if (Array.isArray(data.loras)) {
      document.querySelectorAll("#lora-list .lora-row").forEach(function (r) { r.remove(); });
      data.loras.forEach(function (l) { if (l && l.lora) gen.addLoraRow(l.lora, l.weight); });
    }
    if (gen.updateHires) gen.updateHires();
    if (gen.markPreset) gen.markPreset();
    if (gen.describeSampler) gen.describeSampler();
  }

  var q = new URLSearchParams(location.search);
  var prefilled = PREFILL_KEYS.some(function (k) { return q.has(k); });
  var saved = read();
  // The style list arrives later (generate_panels.js selects this one once it has loaded).
  gen.savedStyle = !prefilled && saved ? saved.style || "" : "";
  if (saved && !prefilled) apply(saved);
  if (prefilled) {
    var fromLink = {};
    A1111_KEYS.forEach(function (k) {
      if (q.has(k)) fromLink[k === "sampler_name" ? "sampler" : k] = q.get(k);
    });
    if ("enable_hr" in fromLink) fromLink.enable_hr = /^(1|true|on|yes)$/i.test(fromLink.enable_hr);
    apply(fromLink);
  }

  form.addEventListener("input", saveSoon);
  form.addEventListener("change", saveSoon);
  form.addEventListener("submit", save);
  form.addEventListener("click", function (ev) {
    if (ev.target.closest && ev.target.closest(".lora-remove, .lora-result, .aspect, .trigger-word")) {
      saveSoon();
    }
  });
  window.addEventListener("pagehide", save);
  gen.saveSettings = saveSoon;

  var reset = document.getElementById("settings-reset");
  if (reset) reset.addEventListener("click", function () {
    var s = storage();
    if (s) s.removeItem(KEY);
    window.removeEventListener("pagehide", save);
    location.href = location.pathname;
  });
})();
