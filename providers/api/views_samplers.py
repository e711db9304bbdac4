"""Samplers, schedule types and VAEs a generate request may name (A1111 names; thin views).

The table and its sources: providers/samplers.py and docs/samplers.md.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ..samplers import samplers_payload, schedulers_payload
from ..vae import vae_choices


class SamplerSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="A1111 label, e.g. 'DPM++ 2M'.")
    aliases = serializers.ListField(child=serializers.CharField(),
                                    help_text="Other names accepted (A1111's internal ones).")
    supported = serializers.BooleanField(help_text="False: A1111 has it, diffusers does not.")
    reason = serializers.CharField(required=False, help_text="Why it cannot run.")
    options = serializers.DictField(help_text="The diffusers scheduler class and options.")
    default_schedule_type = serializers.CharField(
        help_text="The schedule type 'Automatic' picks (A1111's default for the sampler).")
    schedule_types = serializers.ListField(child=serializers.CharField(),
                                           help_text="Schedule types it can run with.")


class ScheduleTypeSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="A1111's internal name, e.g. 'karras'.")
    label = serializers.CharField(help_text="A1111's label, e.g. 'Karras'.")
    aliases = serializers.ListField(child=serializers.CharField())
    supported = serializers.BooleanField()
    reason = serializers.CharField(required=False)
    options = serializers.DictField(help_text="diffusers scheduler options it sets.")


class VaeSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="File or folder name to send as 'vae'.")


class SamplerListView(APIView):
    """A1111 samplers: those that run (with their diffusers scheduler) and those that do not."""

    @extend_schema(responses=SamplerSerializer(many=True))
    def get(self, request):
        return Response(SamplerSerializer(samplers_payload(), many=True).data)


class ScheduleTypeListView(APIView):
    """A1111 schedule types and the diffusers options that express them."""

    @extend_schema(responses=ScheduleTypeSerializer(many=True))
    def get(self, request):
        return Response(ScheduleTypeSerializer(schedulers_payload(), many=True).data)


class VaeListView(APIView):
    """VAEs under ``VAE_DIR`` a request may name in ``vae`` (besides 'Automatic')."""

    @extend_schema(responses=VaeSerializer(many=True))
    def get(self, request):
        return Response(VaeSerializer([{"name": n} for n in vae_choices()], many=True).data)
