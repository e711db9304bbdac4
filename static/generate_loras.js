/* Atelier generate page: the LoRA library search (GET /api/loras/?search=) of the LoRA picker.
 * LoRAs whose base model fits the selected model profile (families of loras.compat) come first;
 * the others are marked (issue 13, item 5). The server checks again before queuing (400
 * lora_incompatible), including what the page cannot know (the file's text width). */
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

  /* The families of loras.compat, rendered by the page: {"lora_families": {base_model:
     family}, "profile_families": {slug: [family]}} (see images/views.py _lora_fit_table). */
  var table = { lora_families: {}, profile_families: {} };
  try { table = JSON.parse($("lora-fit").textContent) || table; } catch (e) { /* none */ }

  /* true: fits the selected model; false: made for another family; null: unknown (a base
     model the page cannot place, or a profile type with no family, as remote providers). */
  function fits(lora) {
    var wanted = table.profile_families[modelSelect ? modelSelect.value : ""] || [];
    var fam = table.lora_families[lora.base_model || ""] || "";
    if (!fam || !wanted.length) return null;
    return wanted.indexOf(fam) !== -1;
  }
  gen.loraFits = fits;

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
        warn.textContent = " · " + table.lora_families[l.base_model] + " LoRA, not for this model (" +
          (table.profile_families[modelSelect.value] || []).join("/") + ")";
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
