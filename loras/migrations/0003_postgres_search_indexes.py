"""PostgreSQL-only indexes for the LoRA list: GIN on tags (the tags filter) and trigram GIN on
the searched columns (``search=``), written to match the SQL Django generates for
``icontains`` (``UPPER(col::text) LIKE UPPER(%s)``). Other databases skip this migration's SQL.
Trigram indexes need the ``pg_trgm`` extension; without the privilege to create it they are
skipped with a warning (search still works, only slower)."""

import logging

from django.db import migrations

log = logging.getLogger(__name__)
TRGM_COLUMNS = ("name", "file_name", "trigger_words", "tags", "notes")


def forwards(apps, schema_editor):
    conn = schema_editor.connection
    if conn.vendor != "postgresql":
        return
    with conn.cursor() as cur:
        cur.execute("CREATE INDEX IF NOT EXISTS lora_tags_gin ON loras_loramodel "
                    "USING gin (tags jsonb_path_ops)")
        try:
            cur.execute("SAVEPOINT trgm")
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception as exc:  # noqa: BLE001 - no privilege: keep going without trigrams
            cur.execute("ROLLBACK TO SAVEPOINT trgm")
            log.warning("pg_trgm unavailable (%s); LoRA search will not be indexed", exc)
            return
        for col in TRGM_COLUMNS:
            cur.execute(f"CREATE INDEX IF NOT EXISTS lora_{col}_trgm ON loras_loramodel "
                        f"USING gin (upper({col}::text) gin_trgm_ops)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:
        cur.execute("DROP INDEX IF EXISTS lora_tags_gin")
        for col in TRGM_COLUMNS:
            cur.execute(f"DROP INDEX IF EXISTS lora_{col}_trgm")


class Migration(migrations.Migration):
    dependencies = [("loras", "0002_list_indexes")]
    operations = [migrations.RunPython(forwards, backwards)]
