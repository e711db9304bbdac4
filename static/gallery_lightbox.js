/* Atelier gallery: the lightbox. A click on a thumbnail (nothing selected) opens the image
 * with its parameters beside it; ← / → go to the previous / next image, loading the next
 * page of the grid when the last loaded one is passed; F toggles the favourite (PATCH
 * /api/images/<id>/); Delete deletes it (after a confirmation) and shows the next; Esc closes. "Send to generate" opens the generate page with the
 * image's parameters in the query string (prompt, negative_prompt, width, height, steps,
 * guidance_scale, seed, model = profile slug, sampler, scheduler, clip_skip, hires fields,
 * lora=name:weight); schedule type, clip skip, first-pass size and hires fields are read from
 * the image's A1111 infotext (the "parameters" text, format in docs/infotext.md). "Upscale
 * ×2" queues POST /api/upscale/ and follows the job (GET /api/jobs/<id>/).
 */
(function () {
  "use strict";

  var G = window.AtelierGallery;
  var dialog = document.getElementById("lightbox");
  if (!G || !dialog) return;
  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;
  var form = $("gallery-filters");
  var imgEl = $("lb-img");
  var statusEl = $("lb-status");
  var profileSlugs = {};
  try { profileSlugs = JSON.parse($("profile-slugs").textContent) || {}; } catch (e) { /* none */ }
  var TERMINAL = { succeeded: 1, failed: 1, canceled: 1 };
  var current = null;  // the image shown (API object)
  var moving = false;

  // Django's JavaScript catalog (/jsi18n/, docs/i18n.md); English without it.
  var gettext = window.gettext || function (s) { return s; };
  var fmt = function (text, value) { return text.replace("%s", value); };

  function say(msg, isError) {
    statusEl.textContent = "";
    statusEl.classList.toggle("error", !!isError);
    if (typeof msg === "string") statusEl.textContent = msg;
    else if (msg) statusEl.appendChild(msg);
  }

  /* The "Key: value, ..." line of an A1111 infotext as an object (quoted values unquoted). */
  function infotext(text) {
    var lines = String(text || "").split("\n");
    var last = "";
    for (var i = lines.length - 1; i >= 0; i--) {
      if (/^Steps: /.test(lines[i])) { last = lines[i]; break; }
    }
    var out = {};
    var re = /\s*([\w][\w \-/()]*?): ("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)/g;
    var m;
    while ((m = re.exec(last)) !== null && m[0]) {
      var v = m[2].trim();
      if (v.charAt(0) === "\"") { try { v = JSON.parse(v); } catch (e) { v = v.slice(1, -1); } }
      out[m[1].trim()] = v;
    }
    return out;
  }

  function generateUrl(img) {
    var p = infotext(img.parameters);
    var q = new URLSearchParams();
    var op = img.operation || "txt2img";
    q.set("prompt", img.prompt || "");
    if (img.negative_prompt) q.set("negative_prompt", img.negative_prompt);
    if (op !== "upscale") {
      var size = /^(\d+)x(\d+)$/.exec(p.Size || "");
      q.set("width", size ? size[1] : img.width);
      q.set("height", size ? size[2] : img.height);
      q.set("steps", img.steps);
      q.set("guidance_scale", img.guidance_scale);
    }
    q.set("seed", img.seed);
    if (profileSlugs[img.model_name]) q.set("model", profileSlugs[img.model_name]);
    if (op !== "upscale") {
      if (img.sampler) q.set("sampler", img.sampler);
      if (p["Schedule type"]) q.set("scheduler", p["Schedule type"]);
      if (p["Clip skip"] && Number(p["Clip skip"]) > 1) q.set("clip_skip", p["Clip skip"]);
      if (p["Hires upscale"]) {
        q.set("enable_hr", "1");
        q.set("hr_scale", p["Hires upscale"]);
        if (p["Hires upscaler"]) q.set("hr_upscaler", p["Hires upscaler"]);
        if (p["Hires steps"]) q.set("hr_second_pass_steps", p["Hires steps"]);
        if (p["Denoising strength"]) q.set("denoising_strength", p["Denoising strength"]);
      }
    }
    (img.loras || []).forEach(function (l) {
      if (l && (l.name || l.lora_id)) q.append("lora", (l.name || l.lora_id) + ":" + (l.weight === undefined ? 1 : l.weight));
    });
    return form.dataset.generateUrl + "?" + q.toString();
  }

  function row(dl, label, value, cls) {
    if (value === undefined || value === null || value === "") return;
    var dt = document.createElement("dt");
    dt.textContent = label;
    var dd = document.createElement("dd");
    dd.textContent = value;
    if (cls) dd.className = cls;
    dl.appendChild(dt);
    dl.appendChild(dd);
  }

  function projectName(id) {
    for (var i = 0; i < G.projects.length; i++) if (G.projects[i].id === id) return G.projects[i].name;
    return id ? "#" + id : "";
  }

  function render(img) {
    current = img;
    var mine = !!img.is_owner;
    imgEl.classList.add("loading");
    imgEl.onload = function () { imgEl.classList.remove("loading"); };
    imgEl.src = img.url;
    imgEl.alt = img.alt_text || (img.prompt || "").slice(0, 120);
    imgEl.width = img.width || 512;
    imgEl.height = img.height || 512;
    $("lb-title").textContent = img.title || fmt(gettext("Image #%s"), img.id);
    var i = G.indexOf(img.id);
    $("lb-pos").textContent = fmt(fmt(gettext("%s of %s"), (i + 1).toLocaleString()),
      G.hasMore() ? $("gallery-count").textContent || gettext("many") :
        fmt(gettext("%s loaded"), G.items.length.toLocaleString()));
    $("lb-prev").disabled = i <= 0;
    $("lb-next").disabled = i >= G.items.length - 1 && !G.hasMore();
    var fav = $("lb-fav");
    fav.hidden = !mine;
    fav.setAttribute("aria-pressed", String(!!img.is_favorite));
    fav.textContent = img.is_favorite ? gettext("★ Favourite") : gettext("☆ Favourite");
    $("lb-generate").href = generateUrl(img);
    $("lb-upscale").hidden = !mine;
    $("lb-upscale").disabled = false;
    $("lb-edit").hidden = !mine;
    $("lb-edit").href = (img.detail_url || "/images/" + img.id + "/") + "#edit-form";
    $("lb-open").href = img.detail_url || "/images/" + img.id + "/";
    $("lb-download").href = img.url;
    $("lb-delete").hidden = !mine;
    say("");

    var p = infotext(img.parameters);
    var dl = $("lb-params");
    dl.textContent = "";
    row(dl, gettext("Prompt"), img.prompt, "lb-prompt");
    row(dl, gettext("Negative prompt"), img.negative_prompt, "lb-prompt");
    row(dl, gettext("Model"), img.model_name);
    row(dl, gettext("Operation"), img.operation_label || img.operation);
    row(dl, gettext("Size"), img.width + "×" + img.height + (p.Size && p.Size !== img.width + "x" + img.height ? " " + fmt(gettext("(first pass %s)"), p.Size.replace("x", "×")) : ""));
    if (img.operation !== "upscale") {
      row(dl, gettext("Steps"), img.steps);
      row(dl, gettext("CFG scale"), img.guidance_scale);
      row(dl, gettext("Sampler"), img.sampler);
      row(dl, gettext("Schedule type"), p["Schedule type"]);
      row(dl, gettext("Clip skip"), p["Clip skip"]);
      if (p["Hires upscale"]) {
        row(dl, gettext("Hires fix"), "×" + p["Hires upscale"] + (p["Hires upscaler"] ? " · " + p["Hires upscaler"] : "") +
          (p["Denoising strength"] ? " · " + gettext("denoising") + " " + p["Denoising strength"] : ""));
      }
    }
    row(dl, gettext("Seed"), img.seed);
    row(dl, "LoRAs", (img.loras || []).map(function (l) {
      return (l.name || l.lora_id) + " " + (l.weight === undefined ? 1 : l.weight);
    }).join(", "));
    row(dl, gettext("Tags"), (img.tags || []).join(", "));
    if (img.project) row(dl, gettext("Project"), projectName(img.project));
    if (G.scope() === "public") row(dl, gettext("By"), img.owner);
    row(dl, gettext("Public"), img.is_public ? gettext("yes") : (mine ? gettext("no") : ""));
    row(dl, gettext("Created"), img.created_at ? new Date(img.created_at).toLocaleString(document.documentElement.lang || undefined) : "");

    // Warm the cache for the neighbours (full images; the grid has only thumbnails).
    [G.items[i + 1], G.items[i - 1]].forEach(function (n) { if (n) (new Image()).src = n.url; });
  }

  function open(id) {
    var i = G.indexOf(id);
    if (i < 0) return;
    render(G.items[i]);
    if (!dialog.open) dialog.showModal();
    dialog.focus();
  }

  function close() { if (dialog.open) dialog.close(); }

  dialog.addEventListener("close", function () {
    if (!current) return;
    var t = G.tileOf(current.id);
    if (t) { t.scrollIntoView({ block: "nearest" }); t.focus({ preventScroll: true }); }
    imgEl.removeAttribute("src");
  });

  function step(delta) {
    if (!current || moving) return;
    var i = G.indexOf(current.id) + delta;
    if (i < 0) return;
    if (i < G.items.length) { render(G.items[i]); return; }
    if (!G.hasMore()) return;
    moving = true;
    say(gettext("Loading more…"));
    G.loadMore().then(function () {
      moving = false;
      if (i < G.items.length) render(G.items[i]);
      else say("");
    }, function () { moving = false; });
  }

  function toggleFavorite() {
    if (!current || $("lb-fav").hidden) return;
    var img = current;
    var want = !img.is_favorite;
    api("PATCH", "/api/images/" + img.id + "/", { is_favorite: want }).then(function (r) {
      if (!r.ok) { say((r.data && r.data.message) || fmt(gettext("Could not change the favourite (HTTP %s)."), r.status), true); return; }
      G.update({ id: img.id, is_favorite: !!r.data.is_favorite });
      if (current && current.id === img.id) render(G.items[G.indexOf(img.id)]);
      say(r.data.is_favorite ? gettext("Added to favourites.") : gettext("Removed from favourites."));
    }, function () { say(gettext("Could not reach the server."), true); });
  }

  /* Delete the image shown (after a confirmation) and show the next one (else the previous,
     else close): DELETE /api/images/<id>/ removes the row and its files. */
  function remove() {
    if (!current || $("lb-delete").hidden) return;
    var img = current;
    if (!window.confirm(gettext("Delete this image and its files? This cannot be undone."))) return;
    api("DELETE", "/api/images/" + img.id + "/").then(function (r) {
      if (r.status !== 204) { say((r.data && r.data.message) || fmt(gettext("Could not delete (HTTP %s)."), r.status), true); return; }
      var i = G.indexOf(img.id);
      G.remove([img.id]);
      var next = G.items[i] || G.items[i - 1];
      if (next) render(next);
      else { current = null; close(); }
    }, function () { say(gettext("Could not reach the server."), true); });
  }

  function followJob(jobId) {
    return new Promise(function (resolve) {
      var tick = function () {
        api("GET", "/api/jobs/" + encodeURIComponent(jobId) + "/").then(function (r) {
          if (!r.ok || !r.data) { resolve({ status: "failed", error: { message: "Job status HTTP " + r.status } }); return; }
          if (TERMINAL[r.data.status]) resolve(r.data);
          else {
            say(fmt(gettext("Upscale ×2: %s…"), r.data.status));
            setTimeout(tick, 700);
          }
        }, function () { setTimeout(tick, 1500); });
      };
      tick();
    });
  }

  function upscale() {
    if (!current) return;
    var img = current;
    var btn = $("lb-upscale");
    btn.disabled = true;
    say(gettext("Queuing an upscale ×2…"));
    api("POST", form.dataset.apiUpscale, { image_id: img.id, factor: 2 }).then(function (r) {
      var jobId = r.data && r.data.job;
      if (r.status !== 202 || !jobId) {
        btn.disabled = false;
        say((r.data && r.data.message) || fmt(gettext("Upscale failed (HTTP %s)."), r.status), true);
        return;
      }
      followJob(String(jobId)).then(function (job) {
        btn.disabled = false;
        if (job.status !== "succeeded") {
          say((job.error && job.error.message) || fmt(gettext("Upscale %s."), job.status), true);
          return;
        }
        var images = (job.result && job.result.images) || [];
        var frag = document.createDocumentFragment();
        frag.appendChild(document.createTextNode(gettext("Upscaled: ")));
        images.forEach(function (res) {
          var a = document.createElement("a");
          a.className = "result-link";
          a.href = res.detail_url || "/images/" + (res.id || res.image) + "/";
          a.textContent = gettext("open result") + (res.width ? " (" + res.width + "×" + res.height + ")" : "");
          frag.appendChild(a);
        });
        if (current && current.id === img.id) say(frag);
      });
    }, function () { btn.disabled = false; say(gettext("Could not reach the server."), true); });
  }

  G.clickHandlers.push(function (ev, id) { open(id); return true; });
  G.lightbox = { open: open, close: close, current: function () { return current; } };
  G.on("reset", close);

  $("lb-prev").addEventListener("click", function () { step(-1); });
  $("lb-next").addEventListener("click", function () { step(1); });
  $("lb-close").addEventListener("click", close);
  $("lb-fav").addEventListener("click", toggleFavorite);
  $("lb-upscale").addEventListener("click", upscale);
  $("lb-delete").addEventListener("click", remove);
  // A click on the backdrop (outside the image and the panel) closes.
  dialog.addEventListener("click", function (ev) {
    if (ev.target === dialog || ev.target.classList.contains("lb-stage")) close();
  });
  // On the document, not the dialog: a button that disables itself (Upscale) leaves the focus
  // on the body, outside the dialog.
  document.addEventListener("keydown", function (ev) {
    if (!dialog.open || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "ArrowRight") { ev.preventDefault(); step(1); }
    else if (ev.key === "ArrowLeft") { ev.preventDefault(); step(-1); }
    else if (ev.key === "f" || ev.key === "F") { ev.preventDefault(); toggleFavorite(); }
    else if (ev.key === "Delete") { ev.preventDefault(); remove(); }
  });
})();
