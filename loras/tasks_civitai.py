"""Celery tasks (see loras/tasks.py)."""
