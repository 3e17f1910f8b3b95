"""Settings of bench/api.py's server: production settings (caseapi.settings, from the same
environment) with the bare baseline routes of bench/bare.py added to the URL conf, and the
Celery queue named per deployment (bench/api.py runs one per data size side by side). Nothing
else differs, so the real endpoints run exactly as deployed."""

import os

from caseapi.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare"
# Each data size's deployment has its own Celery worker, on its own queue of the shared broker.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "celery")
