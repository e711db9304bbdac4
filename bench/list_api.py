#!/usr/bin/env python
"""``GET /api/loras/?page_size=100`` with filters at 10,000 and 100,000 rows on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/list_api.py \
        [--sizes 10000 100000] [--repeat 30] [--indexes both|none|with]

The script never touches the database named in ``DATABASE_URL``: it uses (and creates with
``createdb`` when missing) a sibling database ``atelier_bench`` on the same server, migrates it,
empties its LoRA tables and fills them with ``bulk_create``. Requests go through Django's test
client in this process (URL routing, token auth, filters, pagination with its COUNT,
serialization: everything but the socket). Each query is timed ``--repeat`` times after 3
warm-up calls; p50/p95 in milliseconds per query and size. With ``--indexes both`` every size is
measured without, then with, the indexes proposed in ``INDEXES`` (created by raw SQL in the
bench database only; the models are not changed). Next to each figure, the server-side
execution times (EXPLAIN ANALYZE) of the two SQL queries a page costs: the COUNT(*) the
pagination needs and the page itself. Target (issue #3): p50 ≤ 25 ms at 100,000.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import sibling_database_url  # noqa: E402  (bench/ is the script's folder)

BENCH_DB = "atelier_bench"
QUERIES = {
    "default (name)": "page_size=100",
    "base_model + -created_at": "page_size=100&base_model=SDXL 1.0&ordering=-created_at",
    "tags any + -usage_count": "page_size=100&tags=anime,landscape&ordering=-usage_count",
    "tags all + base_model + -size": ("page_size=100&base_model=SD 1.5&tags=style,anime"
                                      "&tags_mode=all&ordering=-size"),
    "search": "page_size=100&search=knight",
    "search + base_model + page 3": "page_size=100&search=style&base_model=Pony&page=3",
}
# The indexes of loras migrations 0002 and 0003 (PostgreSQL), by name -> SQL, so the bench can
# measure the list without and with them.
INDEXES = {
    "lora_tags_gin": "CREATE INDEX {name} ON loras_loramodel USING gin (tags jsonb_path_ops)",
    "lora_name_ci": "CREATE INDEX {name} ON loras_loramodel (lower(name), id)",
    # The default list (present, not excluded): its page in name order and its COUNT(*) as an
    # index-only scan.
    "lora_live_name_ci": ("CREATE INDEX {name} ON loras_loramodel (lower(name), id) "
                          "WHERE status = 'present' AND NOT excluded"),
    "lora_created_id": "CREATE INDEX {name} ON loras_loramodel (created_at, id)",
    "lora_size_id": "CREATE INDEX {name} ON loras_loramodel (size, id)",
    "lora_usage_id": "CREATE INDEX {name} ON loras_loramodel (usage_count, id)",
    # search: trigram indexes matching Django's icontains SQL, UPPER(col::text) LIKE UPPER(%s)
    **{f"lora_{col}_trgm": ("CREATE INDEX {name} ON loras_loramodel USING gin "
                            f"(upper({col}::text) gin_trgm_ops)")
       for col in ("name", "file_name", "trigger_words", "tags", "notes")},
}
BASE_MODELS = ["SD 1.5", "SDXL 1.0", "Pony", "Illustrious", "Flux.1 D", "SD 2.1"]
WORDS = ("anime style landscape portrait knight castle neon cyberpunk watercolor sketch detail "
         "lighting armor dragon forest city night rain flower robot girl boy cat dog food car "
         "space ocean mountain retro pixel ink oil clay paper glass metal wood fire ice").split()


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def bench_database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server, e.g. "
                         "postgres://postgres@127.0.0.1:5432/test (a sibling database "
                         f"{BENCH_DB!r} is used).")
    return sibling_database_url(url, BENCH_DB)


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(*, root, start: int, stop: int, rng: random.Random) -> None:
    """Add rows ``start..stop-1`` (realistic spread of base models, tags, names, folders)."""
    from loras.models import LoraModel

    batch = []
    for i in range(start, stop):
        words = rng.sample(WORDS, 3)
        base = rng.choice(BASE_MODELS)
        tags = rng.sample(WORDS, rng.randint(0, 5))
        folder = f"{base}/{tags[0] if tags else 'misc'}"
        name = f"{words[0]}_{words[1]}_{i}"
        batch.append(LoraModel(
            root=root, relative_path=f"{folder}/{name}.safetensors", folder=folder,
            file_name=f"{name}.safetensors", name=name, size=rng.randint(10, 900) * 1 << 20,
            sha256=f"{rng.getrandbits(256):064x}", base_model=base, tags=tags,
            trigger_words=[f"{words[2]} {i % 97}"], nsfw_level=rng.choice([0, 0, 0, 1, 2, 4, 8]),
            favorite=rng.random() < 0.05, excluded=rng.random() < 0.01,
            usage_count=rng.randint(0, 500), notes=rng.choice(["", "", f"{words[1]} notes"]),
            civitai_model_id=rng.randint(1, 10**6) if rng.random() < 0.7 else None,
            civitai_version_id=rng.randint(1, 10**6) if rng.random() < 0.7 else None,
            status="present" if rng.random() < 0.98 else "missing"))
        if len(batch) == 5000:
            LoraModel.objects.bulk_create(batch)
            batch = []
    if batch:
        LoraModel.objects.bulk_create(batch)


def set_indexes(on: bool) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        if on:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, sql in INDEXES.items():
            cur.execute(f"DROP INDEX IF EXISTS {name}")
            if on:
                cur.execute(sql.format(name=name))
        cur.execute("VACUUM ANALYZE loras_loramodel")


def measure(client, repeat: int) -> dict[str, list[float]]:
    out = {}
    for label, query in QUERIES.items():
        for _ in range(3):
            response = client.get(f"/api/loras/?{query}")
            assert response.status_code == 200, response.content[:300]
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get(f"/api/loras/?{query}")
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        out[label] = times
    return out


def db_times(query: str) -> tuple[float, float]:
    """Server-side execution time (ms, EXPLAIN ANALYZE) of the COUNT and of the page query the
    list endpoint runs for ``query``."""
    from django.db import connection
    from django.http import QueryDict

    from loras.selectors import lora_list

    params = QueryDict(query)
    qs = lora_list(params=params)
    size = int(params.get("page_size", 50))
    page = int(params.get("page", 1))
    out = []
    with connection.cursor() as cur:
        for sub in (qs.order_by().values("id"), qs[(page - 1) * size: page * size]):
            sql, sql_params = sub.query.sql_with_params()
            if sub is not qs:
                sql = f"SELECT count(*) FROM ({sql}) AS s" if "LIMIT" not in sql else sql
            cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", sql_params)
            out.append(cur.fetchone()[0][0]["Execution Time"])
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--indexes", choices=["both", "none", "with"], default="both")
    args = parser.parse_args()
    setup_django(bench_database_url())

    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from loras.models import LibraryRoot

    with connection.cursor() as cur:
        cur.execute("TRUNCATE loras_trashentry, loras_download, loras_loramodel, "
                    "loras_libraryroot RESTART IDENTITY CASCADE")
    root = LibraryRoot.objects.create(path="/bench/loras", name="bench")
    user, _ = get_user_model().objects.get_or_create(username="bench")
    client = APIClient(SERVER_NAME="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    rng = random.Random(3)
    phases = {"both": [False, True], "none": [False], "with": [True]}[args.indexes]
    summary = []
    have = 0
    for size in sorted(args.sizes):
        t0 = time.perf_counter()
        fill(root=root, start=have, stop=size, rng=rng)
        have = size
        print(f"\n== {size:,} rows (filled in {time.perf_counter() - t0:.1f} s) ==")
        for on in phases:
            set_indexes(on)
            results = measure(client, args.repeat)
            tag = "with indexes" if on else "no extra indexes"
            print(f"-- {tag}")
            for label, times in results.items():
                count_ms, page_ms = db_times(QUERIES[label])
                print(f"   {label:32} p50 {pct(times, 50):7.2f} ms   p95 {pct(times, 95):7.2f} ms"
                      f"   (db: count {count_ms:6.2f} ms, page {page_ms:6.2f} ms)")
            every = [t for times in results.values() for t in times]
            p50 = statistics.median(every)
            summary.append((size, tag, p50, pct(every, 95)))
            print(f"   {'all queries':32} p50 {p50:7.2f} ms   p95 {pct(every, 95):7.2f} ms")
    print("\nsummary (all queries pooled):")
    for size, tag, p50, p95 in summary:
        verdict = "OK" if p50 <= 25 or size < 100_000 else "over target"
        print(f"  {size:>8,} rows  {tag:17} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  {verdict}")
    if len(summary) >= 2:
        first, last = summary[0], summary[-1]
        print(f"  growth {first[0]:,} -> {last[0]:,} rows: p50 x{last[2] / first[2]:.2f}")
    set_indexes(False)


if __name__ == "__main__":
    main()
