"""A1111 sampler and schedule-type names mapped to diffusers schedulers (docs/samplers.md).

A1111 (AUTOMATIC1111 stable-diffusion-webui) names a sampler by a label (``"DPM++ 2M"``) and,
since 1.9, a separate *schedule type* (``"Karras"``); its API also takes the internal lower-case
names (``"k_dpmpp_2m"``, ``"karras"``) and the legacy combined labels (``"DPM++ 2M Karras"``).
Each label maps to a diffusers scheduler class and constructor options, following the
correspondence table of diffusers' scheduler overview (docs/samplers.md lists it with sources).

Nothing here imports torch or diffusers at module level: :func:`sampler_check` runs in the web
process before a job is queued; only :func:`scheduler_for` imports diffusers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sampler:
    """One A1111 sampler label and the diffusers scheduler that runs it.

    ``cls`` is a class name in the ``diffusers`` package, ``options`` its constructor options
    (on top of the pipeline's own scheduler config), ``aliases`` the other names A1111 and its
    API clients use, ``default_schedule`` the schedule type A1111's "Automatic" picks for this
    sampler (A1111 ``modules/sd_samplers_kdiffusion.py``, the ``scheduler`` option of each
    sampler; ``""``: the scheduler config's own spacing), ``schedules`` the schedule types the
    class can express (it has the constructor option they need).
    """

    label: str
    cls: str
    options: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    default_schedule: str = ""
    schedules: tuple[str, ...] = ()
    #: Seeds the scheduler's own noise (the Brownian tree of DPMSolverSDEScheduler, torchsde).
    seeded_noise: bool = False


@dataclass(frozen=True)
class ScheduleType:
    """An A1111 schedule type and the scheduler options that express it in diffusers."""

    label: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


_SIGMAS = ("Automatic", "Uniform", "Karras", "Exponential", "SGM Uniform", "Simple", "Beta")
_SPACING = ("Automatic", "Uniform", "SGM Uniform", "Simple")

#: The samplers that run, in A1111's menu order. Sources: diffusers
#: ``docs/source/en/api/schedulers/overview.md`` (A1111/k-diffusion table) and A1111
#: ``modules/sd_samplers_kdiffusion.py`` / ``sd_samplers_timesteps.py`` / ``sd_samplers_lcm.py``
#: (labels, aliases, default schedules).
SAMPLERS: tuple[Sampler, ...] = (
    Sampler("DPM++ 2M", "DPMSolverMultistepScheduler",
            {"algorithm_type": "dpmsolver++", "solver_order": 2},
            ("k_dpmpp_2m", "dpmpp_2m"), "Karras", _SIGMAS),
    Sampler("DPM++ SDE", "DPMSolverSDEScheduler", {},
            ("k_dpmpp_sde", "dpmpp_sde"), "Karras", _SIGMAS, seeded_noise=True),
    Sampler("DPM++ 2M SDE", "DPMSolverMultistepScheduler",
            {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "solver_type": "midpoint"},
            ("k_dpmpp_2m_sde", "dpmpp_2m_sde"), "Exponential", _SIGMAS),
    Sampler("DPM++ 2M SDE Heun", "DPMSolverMultistepScheduler",
            {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "solver_type": "heun"},
            ("k_dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun"), "Exponential", _SIGMAS),
    Sampler("Euler a", "EulerAncestralDiscreteScheduler", {},
            ("k_euler_a", "k_euler_ancestral", "euler_a", "euler_ancestral"), "", _SPACING),
    Sampler("Euler", "EulerDiscreteScheduler", {}, ("k_euler", "euler"), "", _SIGMAS),
    Sampler("LMS", "LMSDiscreteScheduler", {}, ("k_lms", "lms"), "", _SIGMAS),
    Sampler("Heun", "HeunDiscreteScheduler", {}, ("k_heun", "heun"), "", _SIGMAS),
    Sampler("DPM2", "KDPM2DiscreteScheduler", {}, ("k_dpm_2", "dpm2", "dpm_2"), "", _SIGMAS),
    Sampler("DPM2 a", "KDPM2AncestralDiscreteScheduler", {},
            ("k_dpm_2_a", "dpm2_a", "dpm_2_a", "dpm_2_ancestral"), "", _SIGMAS),
    Sampler("DDIM", "DDIMScheduler", {}, ("ddim",), "", _SPACING),
    Sampler("PLMS", "PNDMScheduler", {"skip_prk_steps": True}, ("plms",), "", _SPACING),
    Sampler("UniPC", "UniPCMultistepScheduler", {}, ("unipc", "uni_pc"), "", _SIGMAS),
    Sampler("LCM", "LCMScheduler", {}, ("k_lcm", "lcm"), "", _SPACING),
)

#: A1111 samplers diffusers has no scheduler for (label -> why); asking for one is an error,
#: never a silent substitute.
UNSUPPORTED_SAMPLERS: dict[str, str] = {
    "DPM++ 2S a": "diffusers has no single-step ancestral DPM++ (2S a) scheduler",
    "DPM++ 3M SDE": "diffusers has no third-order SDE DPM++ scheduler",
    "DPM fast": "diffusers has no DPM-Solver 'fast' (fixed-order adaptive) scheduler",
    "DPM adaptive": "diffusers has no adaptive-step DPM-Solver scheduler",
    "Restart": "diffusers has no Restart sampler",
    "DDIM CFG++": "diffusers has no CFG++ variant of DDIM",
    "Euler CFG++": "diffusers has no CFG++ variant of Euler",
    "Euler a CFG++": "diffusers has no CFG++ variant of Euler a",
    "DPM++ 2M CFG++": "diffusers has no CFG++ variant of DPM++ 2M",
    "DPM++ 2S a CFG++": "diffusers has no CFG++ variant of DPM++ 2S a",
}
_UNSUPPORTED_ALIASES = {
    "k_dpmpp_2s_a": "DPM++ 2S a", "dpmpp_2s_ancestral": "DPM++ 2S a",
    "k_dpmpp_3m_sde": "DPM++ 3M SDE", "k_dpm_fast": "DPM fast", "k_dpm_ad": "DPM adaptive",
    "dpm_adaptive": "DPM adaptive", "restart": "Restart", "ddim_cfgpp": "DDIM CFG++",
}

#: Schedule types that run. Sources: diffusers' scheduler overview ("Noise schedules and
#: schedule types": Karras -> use_karras_sigmas, sgm_uniform and simple -> trailing spacing,
#: exponential / beta -> linspace spacing with exponential / beta sigmas); A1111
#: ``modules/sd_schedulers.py`` for names and labels. "Uniform" is k-diffusion's default
#: discrete schedule, timesteps evenly spaced from the last to the first: diffusers' "linspace".
SCHEDULE_TYPES: tuple[ScheduleType, ...] = (
    ScheduleType("Automatic", "automatic", {}),
    ScheduleType("Uniform", "uniform", {"timestep_spacing": "linspace"}),
    ScheduleType("Karras", "karras", {"use_karras_sigmas": True}),
    ScheduleType("Exponential", "exponential",
                 {"timestep_spacing": "linspace", "use_exponential_sigmas": True}),
    ScheduleType("SGM Uniform", "sgm_uniform", {"timestep_spacing": "trailing"},
                 ("SGMUniform",)),
    ScheduleType("Simple", "simple", {"timestep_spacing": "trailing"}),
    ScheduleType("Beta", "beta", {"timestep_spacing": "linspace", "use_beta_sigmas": True}),
)

UNSUPPORTED_SCHEDULES: dict[str, str] = {
    "Polyexponential": "diffusers has no polyexponential sigmas option",
    "KL Optimal": "diffusers has no KL-optimal sigmas option",
    "Align Your Steps": "diffusers takes Align Your Steps only as explicit timesteps per model",
    "Normal": "diffusers has no option for A1111's 'Normal' schedule",
    "DDIM": "diffusers has no option for A1111's 'DDIM' schedule type",
}
_UNSUPPORTED_SCHEDULE_ALIASES = {"kl_optimal": "KL Optimal", "align_your_steps": "Align Your Steps"}

#: Legacy combined labels (``"DPM++ 2M Karras"``) end in one of these.
_LEGACY_SUFFIXES = ("Karras", "Exponential")


def _key(name: str) -> str:
    """Lookup key: lower case, ``++`` as ``pp``, only letters and digits (``"DPM++ 2M"``,
    ``"dpmpp_2m"`` and ``"DPMPP-2M"`` are one key)."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower().replace("++", "pp"))


_SAMPLER_KEYS: dict[str, Sampler] = {}
for _s in SAMPLERS:
    for _n in (_s.label, *_s.aliases):
        _SAMPLER_KEYS[_key(_n)] = _s
_UNSUPPORTED_KEYS = {_key(n): n for n in UNSUPPORTED_SAMPLERS}
_UNSUPPORTED_KEYS.update({_key(a): n for a, n in _UNSUPPORTED_ALIASES.items()})
_SCHEDULE_KEYS: dict[str, ScheduleType] = {}
for _t in SCHEDULE_TYPES:
    for _n in (_t.label, _t.name, *_t.aliases):
        _SCHEDULE_KEYS[_key(_n)] = _t
_UNSUPPORTED_SCHEDULE_KEYS = {_key(n): n for n in UNSUPPORTED_SCHEDULES}
_UNSUPPORTED_SCHEDULE_KEYS.update({_key(a): n for a, n in _UNSUPPORTED_SCHEDULE_ALIASES.items()})


def sampler_labels() -> list[str]:
    """The sampler labels that run, in menu order."""
    return [s.label for s in SAMPLERS]


def schedule_labels() -> list[str]:
    """The schedule type labels that run, in menu order."""
    return [t.label for t in SCHEDULE_TYPES]


class SamplerError(ValueError):
    """An unknown or unsupported sampler/schedule type. ``field`` is ``"sampler"`` or
    ``"scheduler"``, ``allowed`` the labels that would work."""

    def __init__(self, message: str, *, field: str, allowed: list[str]):
        super().__init__(message)
        self.field = field
        self.allowed = allowed


def _find_sampler(name: str) -> tuple[Sampler | None, str]:
    """The sampler for ``name`` and the schedule its legacy suffix names (``""`` if none)."""
    key = _key(name)
    if key in _SAMPLER_KEYS:
        return _SAMPLER_KEYS[key], ""
    for suffix in _LEGACY_SUFFIXES:
        low = _key(suffix)
        if key.endswith(low) and key[: -len(low)] in _SAMPLER_KEYS:
            return _SAMPLER_KEYS[key[: -len(low)]], suffix
    return None, ""


def sampler_check(sampler: str, scheduler: str = "") -> tuple[str, str]:
    """Resolve A1111 names to the canonical ``(sampler label, schedule type label)``.

    Args:
        sampler: an A1111 label (``"DPM++ 2M"``), internal name (``"k_dpmpp_2m"``,
            ``"dpmpp_2m"``) or legacy combined label (``"DPM++ 2M Karras"``), any case; ``""``
            keeps the model's own scheduler (returned as ``("", "")``).
        scheduler: a schedule type label (``"Karras"``) or name (``"karras"``); ``""`` or
            ``"Automatic"`` picks the sampler's A1111 default (Karras for DPM++ 2M and DPM++ SDE,
            Exponential for DPM++ 2M SDE, else the scheduler config's spacing: ``"Automatic"``).

    Returns:
        ``(label, schedule)``, e.g. ``("DPM++ 2M", "Karras")``; ``schedule`` is
        ``"Automatic"`` when the scheduler config decides.

    Raises:
        SamplerError (a ValueError): unknown names, A1111 samplers or schedule types diffusers
            cannot run (the message says so), or a schedule type this sampler's diffusers class
            cannot express (e.g. Karras with "Euler a"); the message names the allowed values.
    """
    sampler = str(sampler or "").strip()
    scheduler = str(scheduler or "").strip()
    schedule: ScheduleType | None = None
    if scheduler:
        schedule = _SCHEDULE_KEYS.get(_key(scheduler))
        if schedule is None:
            allowed = schedule_labels()
            unsupported = _UNSUPPORTED_SCHEDULE_KEYS.get(_key(scheduler))
            why = (f"A1111's schedule type {unsupported!r} cannot run here: "
                   f"{UNSUPPORTED_SCHEDULES[unsupported]}." if unsupported
                   else f"Unknown schedule type {scheduler!r}.")
            raise SamplerError(f"{why} Use one of: {', '.join(allowed)}.", field="scheduler",
                               allowed=allowed)
    if not sampler:
        if schedule is not None and schedule.label != "Automatic":
            raise SamplerError(
                f"Schedule type {schedule.label!r} needs a sampler; choose one of: "
                f"{', '.join(sampler_labels())}.", field="sampler", allowed=sampler_labels())
        return "", ""
    found, legacy = _find_sampler(sampler)
    if found is None:
        allowed = sampler_labels()
        unsupported = _UNSUPPORTED_KEYS.get(_key(sampler))
        if unsupported is None:
            base, _ = _strip_legacy(sampler)
            unsupported = _UNSUPPORTED_KEYS.get(_key(base))
        why = (f"A1111's sampler {unsupported!r} cannot run here: "
               f"{UNSUPPORTED_SAMPLERS[unsupported]}." if unsupported
               else f"Unknown sampler {sampler!r}.")
        raise SamplerError(f"{why} Use one of: {', '.join(allowed)}.", field="sampler",
                           allowed=allowed)
    if legacy and (schedule is None or schedule.label == "Automatic"):
        schedule = _SCHEDULE_KEYS[_key(legacy)]
    label = schedule.label if schedule is not None else "Automatic"
    if label == "Automatic" and found.default_schedule:
        label = found.default_schedule
    if label not in found.schedules:
        raise SamplerError(
            f"Schedule type {label!r} is not available with sampler {found.label!r} in "
            f"diffusers ({found.cls}); use one of: {', '.join(found.schedules)}.",
            field="scheduler", allowed=list(found.schedules))
    return found.label, label


def _strip_legacy(name: str) -> tuple[str, str]:
    for suffix in _LEGACY_SUFFIXES:
        if name.rstrip().lower().endswith(" " + suffix.lower()):
            return name.rstrip()[: -len(suffix)].rstrip(), suffix
    return name, ""


def sampler_get(label: str) -> Sampler:
    """The :class:`Sampler` of a canonical label (as returned by :func:`sampler_check`)."""
    found, _ = _find_sampler(label)
    if found is None:
        raise SamplerError(f"Unknown sampler {label!r}.", field="sampler",
                           allowed=sampler_labels())
    return found


def scheduler_options(sampler: str, schedule: str) -> tuple[str, dict[str, Any]]:
    """``(diffusers class name, constructor options)`` for canonical labels."""
    found = sampler_get(sampler)
    options = dict(found.options)
    options.update(_SCHEDULE_KEYS[_key(schedule or "Automatic")].options)
    return found.cls, options


def scheduler_for(config: Any, sampler: str, schedule: str = "", *, seed: int | None = None):
    """A new diffusers scheduler for an A1111 sampler and schedule type.

    Args:
        config: the pipeline's own scheduler config (``pipe.scheduler.config``): betas,
            prediction type and training timesteps stay the model's.
        sampler / schedule: names as :func:`sampler_check` takes them.
        seed: seeds the scheduler's own noise where it has one (DPM++ SDE's Brownian tree,
            ``noise_sampler_seed``), so the same seed gives the same image; A1111 seeds it with
            the image seed too.

    Returns:
        ``(scheduler, (label, schedule))``; ``Cls.from_config(config, **options)`` costs about
        a millisecond, so callers build one per request.

    Raises:
        SamplerError: as :func:`sampler_check`.
    """
    label, schedule = sampler_check(sampler, schedule)
    import diffusers

    cls_name, options = scheduler_options(label, schedule)
    if seed is not None and sampler_get(label).seeded_noise:
        options["noise_sampler_seed"] = int(seed)
    cls = getattr(diffusers, cls_name)
    return cls.from_config(config, **options), (label, schedule)


def scheduler_seed(scheduler: Any, sampler: str, seed: int):
    """Seed a (reused) scheduler's own noise for the next image: DPM++ SDE's Brownian tree
    takes ``noise_sampler_seed`` when its first step makes the tree. Returns ``scheduler``."""
    if sampler_get(sampler).seeded_noise:
        scheduler.noise_sampler_seed = int(seed)
        scheduler.noise_sampler = None
    return scheduler


def samplers_payload() -> list[dict[str, Any]]:
    """``GET /api/samplers/``: each runnable sampler with its aliases, diffusers class, options
    and schedule types, then the A1111 samplers that cannot run (``supported`` False)."""
    out = [{"name": s.label, "aliases": list(s.aliases), "supported": True,
            "options": {"scheduler": s.cls, **s.options}, "default_schedule_type":
            s.default_schedule or "Automatic", "schedule_types": list(s.schedules)}
           for s in SAMPLERS]
    out += [{"name": name, "aliases": sorted(a for a, n in _UNSUPPORTED_ALIASES.items()
                                             if n == name), "supported": False,
             "reason": why, "options": {}, "default_schedule_type": "", "schedule_types": []}
            for name, why in UNSUPPORTED_SAMPLERS.items()]
    return out


def schedulers_payload() -> list[dict[str, Any]]:
    """``GET /api/schedulers/``: A1111 schedule types with their diffusers options, then those
    that cannot run (``supported`` False)."""
    out = [{"name": t.name, "label": t.label, "aliases": list(t.aliases), "supported": True,
            "options": dict(t.options)} for t in SCHEDULE_TYPES]
    out += [{"name": _key_name(label), "label": label, "aliases": [], "supported": False,
             "reason": why, "options": {}} for label, why in UNSUPPORTED_SCHEDULES.items()]
    return out


def _key_name(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
