/* Atelier gallery: infinite scroll over the paginated image API (/api/images/ for mine,
 * /api/gallery/ for everyone's public images), filters kept in the address bar, NSFW blur
 * setting in localStorage. */
(function () {
  "use strict";

  var form = document.getElementById("gallery-filters");
  if (!form) return;
  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;
  var grid = $("gallery");
  var statusEl = $("gallery-status");
  var errorBox = $("gallery-error");
  var sentinel = $("gallery-sentinel");
  var PAGE_SIZE = 30;
  var BLUR_KEY = "atelier.nsfwBlur";

  var state = { scope: form.dataset.scope || "mine", next: null, loading: false, seq: 0, count: 0 };

  function filters() {
    var out = {};
    ["project", "tag", "model", "lora"].forEach(function (name) {
      var v = String(form.elements.namedItem(name).value || "").trim();
      if (v) out[name] = v;
    });
    return out;
  }

  function firstUrl() {
    var base = state.scope === "public" ? form.dataset.apiPublic : form.dataset.apiMine;
    var q = new URLSearchParams(filters());
    q.set("page_size", PAGE_SIZE);
    return base + "?" + q.toString();
  }

  function syncAddressBar() {
    var q = new URLSearchParams(filters());
    if (state.scope === "public") q.set("scope", "public");
    var s = q.toString();
    history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
  }

  function showError(msg) {
    errorBox.textContent = msg;
    errorBox.hidden = !msg;
  }

  function tile(img) {
    var a = document.createElement("a");
    a.className = "tile";
    a.href = img.detail_url || "/images/" + img.id + "/";
    a.dataset.id = img.id;
    a.title = img.title || img.prompt || "";
    if ((img.nsfw_level || 0) >= 1) a.classList.add("nsfw");
    var el = document.createElement("img");
    el.loading = "lazy";
    el.decoding = "async";
    el.src = img.thumbnail_url || img.url;
    el.alt = img.alt_text || (img.prompt || "").slice(0, 100);
    a.appendChild(el);
    if (img.is_public && state.scope === "mine") {
      var badge = document.createElement("span");
      badge.className = "tile-badge";
      badge.textContent = "public";
      a.appendChild(badge);
    }
    var cap = document.createElement("span");
    cap.className = "tile-caption";
    var p = document.createElement("span");
    p.className = "tile-prompt";
    p.textContent = img.title || img.prompt || "";
    var meta = document.createElement("span");
    meta.className = "tile-meta";
    var bits = [img.model_name, img.width + "×" + img.height, "seed " + img.seed];
    if (state.scope === "public" && img.owner) bits.unshift("by " + img.owner);
    if (img.tags && img.tags.length) bits.push("#" + img.tags.slice(0, 3).join(" #"));
    meta.textContent = bits.filter(Boolean).join(" · ");
    cap.appendChild(p);
    cap.appendChild(meta);
    a.appendChild(cap);
    return a;
  }

  function loadMore() {
    if (state.loading || !state.next) return;
    state.loading = true;
    var seq = state.seq;
    statusEl.textContent = "Loading…";
    api("GET", state.next).then(function (r) {
      if (seq !== state.seq) return;
      state.loading = false;
      if (!r.ok || !r.data) {
        state.next = null;
        statusEl.textContent = "";
        showError(r.status === 404 ?
          "The image list is not available on this server (HTTP 404)." :
          ((r.data && r.data.message) || "Could not load images (HTTP " + r.status + ")."));
        return;
      }
      var items = Array.isArray(r.data) ? r.data : (r.data.results || []);
      state.next = Array.isArray(r.data) ? null : r.data.next;
      if (typeof r.data.count === "number") state.count = r.data.count;
      items.forEach(function (img) { grid.appendChild(tile(img)); });
      var shown = grid.children.length;
      $("gallery-count").textContent = state.count ? state.count + " image" + (state.count === 1 ? "" : "s") : "";
      $("gallery-empty").hidden = shown > 0;
      if (!shown) {
        $("gallery-empty-text").textContent = Object.keys(filters()).length ?
          "No image matches these filters." :
          (state.scope === "public" ? "Nobody has published an image yet." : "Everything you generate is kept here.");
      }
      statusEl.textContent = state.next ? "" : (shown ? "That's all." : "");
      // A short first page may leave the sentinel on screen: keep loading.
      if (state.next && sentinelVisible()) loadMore();
    }, function () {
      if (seq !== state.seq) return;
      state.loading = false;
      statusEl.textContent = "";
      showError("Could not reach the server.");
    });
  }

  function sentinelVisible() {
    var r = sentinel.getBoundingClientRect();
    return r.top < window.innerHeight + 400;
  }

  function reload() {
    state.seq++;
    state.loading = false;
    state.next = firstUrl();
    state.count = 0;
    grid.textContent = "";
    showError("");
    syncAddressBar();
    loadMore();
  }

  if ("IntersectionObserver" in window) {
    new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) loadMore();
    }, { rootMargin: "400px" }).observe(sentinel);
  } else {
    window.addEventListener("scroll", function () { if (sentinelVisible()) loadMore(); });
  }

  /* Options of a select from a (paginated) list endpoint; disabled with a note when missing. */
  function fillSelect(select, url, label) {
    api("GET", url).then(function (r) {
      if (!r.ok || !r.data) {
        select.disabled = true;
        select.title = "Not available (HTTP " + r.status + ")";
        select.options[0].textContent = "(unavailable)";
        return;
      }
      var items = Array.isArray(r.data) ? r.data : (r.data.results || []);
      items.forEach(function (it) {
        var opt = document.createElement("option");
        var v = label(it);
        opt.value = v[0];
        opt.textContent = v[1];
        select.appendChild(opt);
      });
      if (select.dataset.initial) {
        select.value = select.dataset.initial;
        if (select.value !== select.dataset.initial) {
          var extra = document.createElement("option");
          extra.value = extra.textContent = select.dataset.initial;
          select.appendChild(extra);
          select.value = select.dataset.initial;
        }
      }
    }, function () { select.disabled = true; });
  }

  // Filters from the URL may name a project/tag before their options arrive; use them at once.
  ["f-project", "f-tag"].forEach(function (id) {
    var sel = $(id);
    if (sel.dataset.initial) {
      var opt = document.createElement("option");
      opt.value = opt.textContent = sel.dataset.initial;
      sel.appendChild(opt);
      sel.value = sel.dataset.initial;
    }
  });
  fillSelect($("f-project"), form.dataset.apiProjects + "?page_size=200", function (p) {
    return [String(p.id), p.name + (p.image_count !== undefined ? " (" + p.image_count + ")" : "")];
  });
  fillSelect($("f-tag"), form.dataset.apiTags + "?page_size=200", function (t) {
    return [t.name, t.name + (t.count !== undefined ? " (" + t.count + ")" : "")];
  });

  form.querySelectorAll("select").forEach(function (s) { s.addEventListener("change", reload); });
  var loraTimer = null;
  $("f-lora").addEventListener("input", function () {
    clearTimeout(loraTimer);
    loraTimer = setTimeout(reload, 300);
  });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); reload(); });
  form.querySelectorAll("[data-scope]").forEach(function (b) {
    b.addEventListener("click", function () {
      state.scope = b.dataset.scope;
      form.querySelectorAll("[data-scope]").forEach(function (o) {
        o.setAttribute("aria-pressed", String(o === b));
      });
      reload();
    });
  });

  /* NSFW blur: on by default; the choice is kept in localStorage. */
  var blur = $("f-nsfw-blur");
  function applyBlur() { document.body.classList.toggle("nsfw-show", !blur.checked); }
  try { blur.checked = localStorage.getItem(BLUR_KEY) !== "0"; } catch (e) { /* private mode */ }
  applyBlur();
  blur.addEventListener("change", function () {
    try { localStorage.setItem(BLUR_KEY, blur.checked ? "1" : "0"); } catch (e) { /* ignore */ }
    applyBlur();
  });

  reload();
})();
