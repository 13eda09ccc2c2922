"""The Celery app: `celery -A chatsite worker` runs the tasks of chat/tasks.py,
`celery -A chatsite beat` enqueues the periodic ones (CELERY_BEAT_SCHEDULE),
and the broker is CELERY_BROKER_URL (REDIS_URL by default).

Imported by the project package (chatsite/__init__.py), so that the web
processes and the workers alike have it as Celery's current app: the chat
app enqueues through that (chat/taskqueue.py) and never imports this.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

app = Celery("chatsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["chat"])
