"""Signals that let higher floors react to ``reviews`` without ``reviews`` importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by ``manage.py demo_data`` once the demo people, systems and traffic exist (inside
# its transaction), with ``admin=<User>``. Receivers (compliance.demo) add the governance
# demo and return a list of lines for the printed summary.
demo_data_loaded = Signal()
