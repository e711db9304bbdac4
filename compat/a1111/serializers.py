"""A1111 API bodies, named as in A1111's ``modules/api/models.py``.

Lenient as A1111 is: fields Atelier has no use for (``subseed``, ``tiling``, ``s_churn``,
``script_args``, ``alwayson_scripts``, SillyTavern's ``url``/``auth`` ...) are ignored, ``null``
means "not given", and omitted sizes/steps/CFG come from the model profile (not A1111's
512/50/7). What the values must satisfy (sizes, steps, sampler names, LoRAs in the prompt) is
checked by the native generation service after translation.
"""

from rest_framework import serializers


def _int(**kw):
    return serializers.IntegerField(required=False, allow_null=True, **kw)


def _float(**kw):
    return serializers.FloatField(required=False, allow_null=True, **kw)


def _bool(default=False):
    return serializers.BooleanField(required=False, allow_null=True, default=default)


def _text(max_length=2000, **kw):
    return serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                 max_length=max_length, trim_whitespace=False, **kw)


class _ProcessingSerializer(serializers.Serializer):
    prompt = _text(default="")
    negative_prompt = _text(default="")
    styles = serializers.ListField(child=serializers.CharField(max_length=200), required=False,
                                   allow_null=True, help_text="Ignored.")
    seed = _int(default=-1, help_text="-1: random.")
    sampler_name = _text(max_length=100, default=None,
                         help_text="Sampler label or alias (`Euler a`, `k_euler_a`, "
                                   "`DPM++ 2M Karras`).")
    sampler_index = _text(max_length=100, default=None, help_text="Used when `sampler_name` "
                                                                  "is empty.")
    scheduler = _text(max_length=100, default=None,
                      help_text="Schedule type label or name (`Karras`, `automatic`).")
    batch_size = _int(min_value=1, max_value=8, default=1)
    n_iter = _int(min_value=1, max_value=8, default=1)
    steps = _int(min_value=1, max_value=150, default=None)
    cfg_scale = _float(min_value=0.0, max_value=30.0, default=None)
    width = _int(min_value=8, max_value=4096, default=None)
    height = _int(min_value=8, max_value=4096, default=None)
    restore_faces = _bool()
    tiling = _bool()
    override_settings = serializers.DictField(
        required=False, allow_null=True, default=dict,
        help_text="`sd_model_checkpoint` (a title of `sd-models`), `CLIP_stop_at_last_layers`, "
                  "`sd_vae`; other keys are ignored.")
    override_settings_restore_afterwards = _bool(default=True)
    send_images = _bool(default=True)
    save_images = _bool(default=False)


class A1111Txt2ImgSerializer(_ProcessingSerializer):
    """``POST /sdapi/v1/txt2img``."""

    enable_hr = _bool()
    hr_scale = _float(min_value=1.0, max_value=8.0, default=2.0)
    hr_upscaler = _text(max_length=100, default=None)
    hr_second_pass_steps = _int(min_value=0, max_value=150, default=0)
    hr_resize_x = _int(min_value=0, max_value=8192, default=0)
    hr_resize_y = _int(min_value=0, max_value=8192, default=0)
    denoising_strength = _float(min_value=0.0, max_value=1.0, default=None)


class A1111Img2ImgSerializer(_ProcessingSerializer):
    """``POST /sdapi/v1/img2img``: ``init_images`` (base64 or ``data:`` URLs; the first is
    used), ``mask`` (white = repaint; ``inpainting_mask_invert`` 1 swaps), ``mask_blur``
    (pixels, Gaussian), ``denoising_strength``."""

    init_images = serializers.ListField(child=serializers.CharField(allow_blank=True),
                                        min_length=1, max_length=1)
    mask = _text(max_length=None, default=None)
    denoising_strength = _float(min_value=0.01, max_value=1.0, default=0.75)
    mask_blur = _int(min_value=0, max_value=64, default=4)
    inpainting_fill = _int(min_value=0, max_value=3, default=0,
                           help_text="Accepted; diffusers' inpainting starts from the original.")
    inpaint_full_res = _bool()
    inpaint_full_res_padding = _int(min_value=0, default=0)
    inpainting_mask_invert = _int(min_value=0, max_value=1, default=0)
    resize_mode = _int(min_value=0, max_value=3, default=0)
    include_init_images = _bool()


class A1111ExtraSingleImageSerializer(serializers.Serializer):
    """``POST /sdapi/v1/extra-single-image``: upscale ``image`` by ``upscaling_resize`` (2 or
    4; ``resize_mode`` 1: to ``upscaling_resize_w`` x ``upscaling_resize_h``, which must be
    2x or 4x the image) with ``upscaler_1`` (``None``/``Lanczos``: Atelier's Lanczos)."""

    image = serializers.CharField()
    resize_mode = _int(min_value=0, max_value=1, default=0)
    upscaling_resize = _float(min_value=1.0, max_value=8.0, default=2.0)
    upscaling_resize_w = _int(min_value=1, default=512)
    upscaling_resize_h = _int(min_value=1, default=512)
    upscaler_1 = _text(max_length=100, default="None")


class A1111PngInfoSerializer(serializers.Serializer):
    """``POST /sdapi/v1/png-info``: ``image`` as base64 or a ``data:`` URL."""

    image = serializers.CharField()


class A1111OptionsSerializer(serializers.Serializer):
    """``POST /sdapi/v1/options``: the keys Atelier keeps; every other key is accepted and
    ignored (clients post back the whole object they read)."""

    sd_model_checkpoint = _text(max_length=300, default=None)
    CLIP_stop_at_last_layers = _int(min_value=1, max_value=12, default=None)  # noqa: N815


class A1111ProgressQuerySerializer(serializers.Serializer):
    skip_current_image = serializers.BooleanField(required=False, default=False)


class A1111TextToImageResponseSerializer(serializers.Serializer):
    images = serializers.ListField(child=serializers.CharField(),
                                   help_text="Base64 PNGs (with their `parameters` chunk).")
    parameters = serializers.DictField(help_text="The request as it was run.")
    info = serializers.CharField(help_text="JSON: prompt, seeds, infotexts, job id ...")


class A1111ExtraSingleImageResponseSerializer(serializers.Serializer):
    image = serializers.CharField()
    html_info = serializers.CharField(allow_blank=True)


class A1111PngInfoResponseSerializer(serializers.Serializer):
    info = serializers.CharField(allow_blank=True)
    items = serializers.DictField()
    parameters = serializers.DictField()


class A1111ProgressStateSerializer(serializers.Serializer):
    skipped = serializers.BooleanField()
    interrupted = serializers.BooleanField()
    stopping_generation = serializers.BooleanField()
    job = serializers.CharField(allow_blank=True)
    job_count = serializers.IntegerField()
    job_timestamp = serializers.CharField(allow_blank=True)
    job_no = serializers.IntegerField()
    sampling_step = serializers.IntegerField()
    sampling_steps = serializers.IntegerField()


class A1111ProgressResponseSerializer(serializers.Serializer):
    progress = serializers.FloatField()
    eta_relative = serializers.FloatField()
    state = A1111ProgressStateSerializer()
    current_image = serializers.CharField(allow_null=True)
    textinfo = serializers.CharField(allow_null=True, allow_blank=True)
