/* Atelier generate page: the LoRA library search (GET /api/loras/?search=) of the LoRA picker.
 * LoRAs whose base model fits the selected model profile come first; the others are marked
 * (issue 13, item 5). The server checks again before queuing (400 lora_incompatible). */
(function () {
  "use strict";

  var gen = window.Atelier && window.Atelier.gen;
  if (!gen) return;
  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;
  var search = $("lora-search");
  var results = $("lora-results");
  var searchMsg = $("lora-search-msg");
  var modelSelect = $("id_model");
  var searchTimer = null;
  var searchSeq = 0;

  /* The model family of a Civitai base-model label ("SD 1.5", "SDXL 1.0", "Pony",
     "Illustrious", "Flux.1 D", ...) in the terms of a profile's pipeline_type (sd, sdxl,
     flux, sd3); "" when the label says nothing we know. */
  function family(baseModel) {
    var b = String(baseModel || "").toLowerCase();
    if (!b) return "";
    if (/flux/.test(b)) return "flux";
    if (/sd ?3/.test(b)) return "sd3";
    if (/sdxl|xl|pony|illustrious|noobai|playground/.test(b)) return "sdxl";
    if (/sd ?1|sd ?2|^sd$/.test(b)) return "sd";
    return "";
  }

  /* true: fits the selected model; false: does not; null: unknown (either side). */
  function fits(lora) {
    var opt = modelSelect && modelSelect.selectedOptions ? modelSelect.selectedOptions[0] : null;
    var pipe = opt ? String(opt.dataset.pipeline || "").toLowerCase() : "";
    var fam = family(lora.base_model);
    if (!fam || ["sd", "sdxl", "flux", "sd3"].indexOf(pipe) === -1) return null;
    return fam === pipe;
  }
  gen.loraFits = fits;
  gen.loraFamily = family;

  function hasLora(name) {
    return gen.collectLoras().some(function (l) { return l.lora === name; });
  }

  function showResults(items) {
    results.textContent = "";
    // Compatible first, unknown next, incompatible last; the API's order within each.
    var rank = function (l) { var f = fits(l); return f === true ? 0 : (f === null ? 1 : 2); };
    items = items.map(function (l, i) { return { l: l, i: i }; }).sort(function (a, b) {
      return rank(a.l) - rank(b.l) || a.i - b.i;
    }).map(function (x) { return x.l; });
    items.forEach(function (l) {
      var li = document.createElement("li");
      var b = document.createElement("button");
      var fit = fits(l);
      b.type = "button";
      b.className = "lora-result" + (fit === false ? " lora-incompatible" : "");
      b.dataset.name = l.name;
      b.dataset.fits = fit === null ? "unknown" : String(fit);
      var strong = document.createElement("strong");
      strong.textContent = l.name;
      b.appendChild(strong);
      var meta = [l.base_model, (l.trigger_words || []).slice(0, 3).join(", ")].filter(Boolean);
      if (meta.length) {
        var span = document.createElement("span");
        span.className = "muted";
        span.textContent = " " + meta.join(" · ");
        b.appendChild(span);
      }
      if (fit === false) {
        var warn = document.createElement("span");
        warn.className = "lora-fit-warning";
        warn.textContent = " · not for " + (modelSelect.selectedOptions[0].dataset.pipeline || "") +
          " models";
        b.appendChild(warn);
        b.title = "This LoRA was made for another model family; the server will refuse it.";
      }
      b.addEventListener("click", function () {
        if (!hasLora(l.name)) {
          var w = l.preferred_weight === null || l.preferred_weight === undefined ? 1 : l.preferred_weight;
          var row = gen.addLoraRow(l.name, w, l.trigger_words || []);
          if (fit === false) row.classList.add("lora-incompatible");
        }
        results.hidden = true;
        search.value = "";
      });
      li.appendChild(b);
      results.appendChild(li);
    });
    results.hidden = !items.length;
  }

  function runSearch() {
    var q = search.value.trim();
    var seq = ++searchSeq;
    if (!q) { showResults([]); searchMsg.textContent = ""; return; }
    api("GET", search.dataset.api + "?page_size=20&search=" + encodeURIComponent(q)).then(function (r) {
      if (seq !== searchSeq) return;
      if (!r.ok || !r.data) {
        searchMsg.textContent = r.status === 404 ? "The LoRA library API is not available." :
          "LoRA search failed (HTTP " + r.status + ").";
        showResults([]);
        return;
      }
      var items = Array.isArray(r.data) ? r.data : (r.data.results || []);
      var off = items.filter(function (l) { return fits(l) === false; }).length;
      searchMsg.textContent = !items.length ? "No LoRA matches “" + q + "”." :
        (off ? off + " of " + items.length + " are for another model family (listed last)." : "");
      showResults(items);
    }, function () {
      if (seq === searchSeq) searchMsg.textContent = "Could not reach the server.";
    });
  }

  if (search) {
    search.addEventListener("input", function () {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(runSearch, 200);
    });
    search.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); clearTimeout(searchTimer); runSearch(); }
      if (ev.key === "Escape") results.hidden = true;
    });
  }
  if (modelSelect) modelSelect.addEventListener("change", function () {
    if (search && search.value.trim()) runSearch();
  });
})();
