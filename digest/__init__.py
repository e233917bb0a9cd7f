"""digest: self-hosted newsletter digests — feeds in, scheduled digest emails out."""

from __future__ import annotations

__version__ = "0.1.0"
