"""WebSocket consumer: authenticate, join the right group, forward job snapshots. No DB writes.

- ``/ws/jobs/``: all jobs of the connected user (group ``user.<id>.jobs``).
- ``/ws/jobs/<id>/``: one job of the user (group ``job.<id>``); the current snapshot is sent on
  connect so a reconnecting client is up to date at once.

Close codes: 4401 not authenticated, 4404 no such job of this user, 1003 a frame that is not
a JSON object.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .events import job_group, remember_server_loop, user_group
from .models import Job
from .snapshots import job_snapshot, job_snapshot_for_viewer


class JobConsumer(AsyncJsonWebsocketConsumer):
    """Forwards ``job.update`` events as ``{"type": "job", "job": snapshot}`` messages."""

    async def connect(self):
        remember_server_loop()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        job_id = self.scope["url_route"]["kwargs"].get("job_id")
        snapshot = None
        if job_id:
            snapshot = await self._own_snapshot(user.pk, job_id)
            if snapshot is None:
                await self.close(code=4404)
                return
            self.group = job_group(job_id)
        else:
            self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        if snapshot is not None:
            await self.send_json({"type": "job", "job": self._for_viewer(snapshot)})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """A text frame holding a JSON object goes to :meth:`receive_json`; anything else (binary,
        malformed JSON, a JSON array or scalar) closes the socket with 1003 "unsupported data"
        (RFC 6455 section 7.4.1) instead of an exception in the server (1011 and a traceback)."""
        content = None
        if text_data is not None:
            try:
                content = await self.decode_json(text_data)
            except ValueError:  # json.JSONDecodeError, or an unpaired surrogate
                content = None
        if not isinstance(content, dict):
            await self.close(code=1003)
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        # Clients may ask for the current snapshot again ({"type": "ping"}).
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def job_update(self, event):
        await self.send_json({"type": "job", "job": self._for_viewer(event["job"])})

    def _for_viewer(self, snapshot: dict) -> dict:
        """The snapshot as this socket's user may see it: for users who are not staff, absolute
        server paths in ``message`` and ``error`` show their last component only (a worker
        writes e.g. an OSError's path there); the REST snapshot does the same."""
        return job_snapshot_for_viewer(snapshot, user=self.scope.get("user"))

    @database_sync_to_async
    def _own_snapshot(self, user_id, job_id):
        job = Job.objects.filter(pk=job_id, user_id=user_id).first()
        return job_snapshot(job) if job else None


class NotFoundConsumer(AsyncJsonWebsocketConsumer):
    """Any other ``/ws/`` path (a malformed job id, a typo): closed with 4404 instead of an
    unhandled "No route found" error in the server."""

    async def connect(self):
        await self.close(code=4404)
