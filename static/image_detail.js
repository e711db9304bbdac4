/* Atelier image detail (owner actions): tags/project/public (PATCH /api/images/<pk>/), edit
 * (POST /api/edit/, with the image's ticked LoRAs), upscale (POST /api/upscale/), generate
 * again for an edit/upscale (POST /api/images/<pk>/repeat/), narrate (POST
 * /api/images/<pk>/narrate/), delete (DELETE /api/images/<pk>/). Jobs are followed by polling GET /api/jobs/<id>/. */
(function () {
  "use strict";
  // Django's JavaScript catalog (/jsi18n/, docs/i18n.md); English without it.
  var gettext = window.gettext || function (s) { return s; };
  var fmt = function (text, value) { return text.replace("%s", value); };

  var panel = document.getElementById("owner-panel");
  if (!panel) return;
  var $ = function (id) { return document.getElementById(id); };
  var api = window.Atelier.api;
  var d = panel.dataset;
  var TERMINAL = { succeeded: 1, failed: 1, canceled: 1 };

  function say(el, msg, isError) {
    el.textContent = "";
    el.classList.toggle("error", !!isError);
    if (typeof msg === "string") el.textContent = msg;
    else if (msg) el.appendChild(msg);
  }

  function failure(r, what) {
    if (r.status === 404) return fmt(gettext("%s is not available on this server (HTTP 404)."), what);
    return (r.data && r.data.message) || fmt(fmt(gettext("%s failed (HTTP %s)."), what), r.status);
  }

  /* Poll a job until it ends; onStep(job) for each snapshot; resolves with the last one. */
  function followJob(jobId, onStep) {
    return new Promise(function (resolve) {
      var tick = function () {
        api("GET", d.apiJobs + encodeURIComponent(jobId) + "/").then(function (r) {
          if (!r.ok || !r.data) { resolve({ status: "failed", error: { message: failure(r, gettext("Job status")) } }); return; }
          onStep(r.data);
          if (TERMINAL[r.data.status]) resolve(r.data);
          else setTimeout(tick, 600);
        }, function () { setTimeout(tick, 1500); });
      };
      tick();
    });
  }

  function jobText(job) {
    if (job.status === "running" && job.total_steps) return gettext("running") + " · " + fmt(fmt(gettext("step %s / %s"), job.step), job.total_steps);
    return job.status + "…";
  }

  function resultLinks(job) {
    var images = (job.result && job.result.images) || [];
    var frag = document.createDocumentFragment();
    frag.appendChild(document.createTextNode(gettext("Done: ")));
    images.forEach(function (img, i) {
      var a = document.createElement("a");
      a.href = img.detail_url || ("/images/" + (img.id || img.image) + "/");
      a.className = "result-link";
      a.textContent = gettext("open result") + (images.length > 1 ? " " + (i + 1) : "") +
        (img.width ? " (" + img.width + "×" + img.height + ")" : "");
      frag.appendChild(a);
      frag.appendChild(document.createTextNode(" "));
    });
    if (!images.length) frag.appendChild(document.createTextNode(gettext("finished.")));
    return frag;
  }

  /* Start a job with POST url body and follow it, reporting into statusEl. */
  function runJob(url, body, statusEl, what, onDone) {
    say(statusEl, gettext("Queuing…"));
    return api("POST", url, body).then(function (r) {
      // Generation-like answers carry {"job": id}; job snapshots (narrate) carry {"id"}.
      var jobId = r.data && (r.data.job || (r.data.ws_url && r.data.id));
      if (r.status !== 202 || !jobId) {
        var msg = failure(r, what);
        if (r.data && r.data.fields) {
          msg += " " + Object.keys(r.data.fields).map(function (k) {
            return k + ": " + [].concat(r.data.fields[k]).join(" ");
          }).join("; ");
        }
        say(statusEl, msg, true);
        return null;
      }
      return followJob(String(jobId), function (job) { say(statusEl, what + ": " + jobText(job)); })
        .then(function (job) {
          if (job.status === "succeeded") onDone(job);
          else if (job.status === "canceled") say(statusEl, fmt(gettext("%s was canceled."), what), true);
          else say(statusEl, (job.error && job.error.message) || fmt(gettext("%s failed."), what), true);
          return job;
        });
    }, function () { say(statusEl, gettext("Could not reach the server."), true); });
  }

  /* ---------- organize: tags, project, public ---------- */

  var projectSel = $("o-project");
  api("GET", d.apiProjects + "?page_size=200").then(function (r) {
    if (!r.ok || !r.data) {
      projectSel.disabled = true;
      projectSel.options[0].textContent = gettext("Projects unavailable");
      return;
    }
    (Array.isArray(r.data) ? r.data : r.data.results || []).forEach(function (p) {
      var o = document.createElement("option");
      o.value = String(p.id);
      o.textContent = p.name;
      projectSel.appendChild(o);
    });
    projectSel.value = projectSel.dataset.current || "";
  });

  $("organize-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var status = $("organize-status");
    var tags = $("o-tags").value.split(",").map(function (t) { return t.trim(); })
      .filter(Boolean);
    var body = { tags: tags, is_public: $("o-public").checked };
    if (!projectSel.disabled) body.project = projectSel.value ? Number(projectSel.value) : null;
    say(status, gettext("Saving…"));
    api("PATCH", d.apiImage, body).then(function (r) {
      if (r.ok) {
        say(status, gettext("Saved."));
        if (r.data && r.data.tags) $("o-tags").value = r.data.tags.join(", ");
      } else {
        say(status, failure(r, gettext("Saving")), true);
      }
    }, function () { say(status, gettext("Could not reach the server."), true); });
  });

  /* ---------- generate again (edit, inpaint, upscale: the same operation and inputs) ---------- */

  var again = $("again-btn");
  if (again) {
    again.addEventListener("click", function () {
      again.disabled = true;
      runJob(again.dataset.apiRepeat, {}, $("again-status"), gettext("Generate again"), function (job) {
        say($("again-status"), resultLinks(job));
      }).then(function () { again.disabled = false; });
    });
  }

  /* ---------- edit (img2img) ---------- */

  /* The ticked LoRAs of this image, sent with the edit (an edit keeps its source's LoRAs). */
  function editLoras() {
    var boxes = document.querySelectorAll("#e-loras input[data-lora]");
    var out = [];
    Array.prototype.forEach.call(boxes, function (b) {
      if (!b.checked) return;
      var ref = { lora: b.dataset.lora, weight: Number(b.dataset.weight) };
      if (b.dataset.teWeight !== undefined) ref.te_weight = Number(b.dataset.teWeight);
      out.push(ref);
    });
    return out;
  }

  var strength = $("e-strength");
  strength.addEventListener("input", function () {
    $("e-strength-value").textContent = Number(strength.value).toFixed(2);
  });
  $("edit-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var btn = $("edit-btn");
    btn.disabled = true;
    var body = { image_id: Number(d.image), prompt: $("e-prompt").value,
                 strength: Number(strength.value), loras: editLoras() };
    if ($("e-model").value) body.model = $("e-model").value;
    runJob(d.apiEdit, body, $("edit-status"), gettext("Edit"), function (job) {
      say($("edit-status"), resultLinks(job));
    }).then(function () { btn.disabled = false; });
  });

  /* ---------- upscale ---------- */

  var actionStatus = $("action-status");
  panel.querySelectorAll("[data-upscale]").forEach(function (b) {
    b.addEventListener("click", function () {
      b.disabled = true;
      runJob(d.apiUpscale, { image_id: Number(d.image), factor: Number(b.dataset.upscale) },
        actionStatus, fmt(gettext("Upscale ×%s"), b.dataset.upscale), function (job) {
          say(actionStatus, resultLinks(job));
        }).then(function () { b.disabled = false; });
    });
  });

  /* ---------- narrate ---------- */

  $("narrate-btn").addEventListener("click", function () {
    var b = $("narrate-btn");
    b.disabled = true;
    runJob(d.apiNarrate, {}, actionStatus, gettext("Narration"), function (job) {
      var url = job.result && job.result.audio_url;
      var show = function (src) {
        var audio = $("narration-audio");
        audio.src = src + (src.indexOf("?") === -1 ? "?" : "&") + "t=" + Date.now();
        $("audio-wrap").hidden = false;
        say(actionStatus, gettext("Narration ready."));
      };
      if (url) { show(url); return; }
      api("GET", d.apiImage).then(function (r) {
        if (r.ok && r.data && r.data.audio_url) show(r.data.audio_url);
        else say(actionStatus, gettext("The narration finished but no audio was stored."), true);
      });
    }).then(function () { b.disabled = false; });
  });

  /* ---------- delete ---------- */

  $("delete-btn").addEventListener("click", function () {
    if (!window.confirm(gettext("Delete this image and its files? This cannot be undone."))) return;
    api("DELETE", d.apiImage).then(function (r) {
      if (r.status === 204 || r.ok) location.href = d.galleryUrl;
      else say(actionStatus, failure(r, gettext("Delete")), true);
    }, function () { say(actionStatus, gettext("Could not reach the server."), true); });
  });
})();
