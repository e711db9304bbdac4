from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "progress", "user", "created_at", "finished_at"]
    list_filter = ["status", "kind"]
    search_fields = ["id", "message", "error_message", "user__username"]
    readonly_fields = ["id", "created_at", "started_at", "finished_at", "seq"]
