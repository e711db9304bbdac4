"""``python manage.py ensure_admin``: create the admin user once.

Username and password come from ``ADMIN_USERNAME`` / ``ADMIN_PASSWORD``; without a password a
random one is generated and printed once.
"""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin superuser if it does not exist (ADMIN_USERNAME, ADMIN_PASSWORD)."

    def handle(self, *args, **options):
        User = get_user_model()
        username = os.environ.get("ADMIN_USERNAME", "admin")
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Admin user {username!r} exists.")
            return
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if os.environ.get("ADMIN_PASSWORD"):
            self.stdout.write(f"Created admin user {username!r} (password from ADMIN_PASSWORD).")
        else:
            self.stdout.write(self.style.WARNING(
                f"Created admin user {username!r} with password: {password}\n"
                "This is shown once; change it in /admin/ or set ADMIN_PASSWORD."))
