"""The Nova API microversion, as a ``(major, minor)`` tuple: ``(2, 9) < (2, 10)``.

Defined here, not in the gateway that negotiates it (:mod:`gateway.versions`), because the
cells' clients read side data by microversion (tags from 2.26, system metadata from 2.73)
and ``cells/`` never imports ``gateway/``; :mod:`gateway.params` re-exports it. A plain
alias rather than a class: the versions compare as tuples, and every caller writes them as
tuple literals.
"""

from __future__ import annotations

__all__ = ["Version"]

Version = tuple[int, int]
