"""Migration loras/0004: the favourite that used to be one flag shared by everyone becomes
each existing user's own favourite, so nobody loses one (docs/library.md)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("loras", "0003_postgres_search_indexes")]
AFTER = [("loras", "0004_library_permissions_favorites_updates")]


@pytest.mark.django_db(transaction=True)
def test_shared_favourites_become_every_users_own():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    User = old.get_model("auth", "User")
    Root = old.get_model("loras", "LibraryRoot")
    Lora = old.get_model("loras", "LoraModel")
    alice, bob = User.objects.create(username="alice"), User.objects.create(username="bob")
    root = Root.objects.create(path="/srv/loras", name="r")
    fav = Lora.objects.create(root=root, relative_path="a.safetensors", file_name="a",
                              name="a", favorite=True)
    Lora.objects.create(root=root, relative_path="b.safetensors", file_name="b", name="b")
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        Favorite = new.get_model("loras", "LoraFavorite")
        assert sorted(Favorite.objects.values_list("user_id", "lora_id")) == [
            (alice.pk, fav.pk), (bob.pk, fav.pk)]
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())
