"""digest's public web pages (Starlette): the only package that serves HTTP.

``create_web_app`` builds the app (:mod:`digest.web.app`); ``listen`` and ``serve_on``
run it inside `digest run` (:mod:`digest.web.server`). Every URL is in :mod:`digest.links`.
"""

from __future__ import annotations

from digest.web.app import create_web_app, reconfigure_web
from digest.web.headers import ARCHIVE_CSP
from digest.web.pages import mask_email
from digest.web.server import listen, serve_on

__all__ = ["ARCHIVE_CSP", "create_web_app", "listen", "mask_email", "reconfigure_web", "serve_on"]
