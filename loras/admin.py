from django.contrib import admin

from .models import Download, LibraryRoot, LoraModel, TrashEntry


@admin.register(LibraryRoot)
class LibraryRootAdmin(admin.ModelAdmin):
    list_display = ["path", "name", "enabled", "created_at"]


@admin.register(LoraModel)
class LoraModelAdmin(admin.ModelAdmin):
    list_display = ["name", "base_model", "folder", "size", "status", "favorite", "created_at"]
    search_fields = ["name", "relative_path", "sha256", "autov3"]
    list_filter = ["status", "base_model", "favorite", "excluded", "root"]
    readonly_fields = ["sha256", "autov3", "size", "mtime", "inode", "header_metadata",
                       "created_at", "updated_at"]


@admin.register(TrashEntry)
class TrashEntryAdmin(admin.ModelAdmin):
    list_display = ["original_relative_path", "root", "deleted_at", "restored_at"]
    list_filter = ["root"]
    raw_id_fields = ["lora"]


@admin.register(Download)
class DownloadAdmin(admin.ModelAdmin):
    list_display = ["file_name", "source_url", "downloaded_bytes", "total_bytes", "created_at"]
    raw_id_fields = ["job", "lora"]
