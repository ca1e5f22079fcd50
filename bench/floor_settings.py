"""The portal's settings plus two benchmark-only paths (``bench/pipeline.py``'s floor phases).

Everything is the portal's own configuration; only ``ROOT_URLCONF`` points at
``floor_urls``, which appends ``/bench/floor/`` after every portal URL (so no portal
path resolves any differently). Used by the benchmark's gunicorn only.
"""

from hitl_portal.settings import *  # noqa: F403

ROOT_URLCONF = "floor_urls"
