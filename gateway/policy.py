"""Nova's policy, evaluated with oslo.policy on the caller's roles, project and user.

:class:`Policy` holds one oslo.policy ``Enforcer`` on a private ``ConfigOpts`` with Nova
34's defaults (:mod:`gateway.novapolicy`) and, when configured, the operator's policy file
(``policy_file``, or ``[oslo_policy] policy_file`` of ``nova.conf``). The file is re-read
when it changes, as oslo.policy does for nova-api (its modification time, checked once per
request); a file that cannot be read or parsed keeps the rules loaded before, and says so
in the log. ``policy.d`` directories are not read.

What each request may do is decided once, into :class:`ListGrants` (a listing) or
:class:`ViewGrants` (what the detail view shows), as Nova decides it:

- the listing's own rule and ``:get_all_tenants`` (index or detail), ``allow_all_filters``
  and the view rules, with the caller's own project and user as the target (what Nova's
  ``context.can`` takes when given none);
- show's rule and the view rules, with the server's project as the target;
- ``context_is_admin`` is Nova's ``context.is_admin`` (:attr:`Principal.is_admin
  <gateway.auth.Principal>`): it sees other projects' servers in show and markers,
  sorts by ``host``/``node``, filters on deleted servers, and sees a fault's details.

The credentials are oslo.context's policy values for a project-scoped token: user,
project, roles and ``is_admin_project``.
"""

from __future__ import annotations

import logging
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from oslo_config import cfg
from oslo_policy import policy as oslo_policy

from gateway import novapolicy as rules
from gateway.errors import Forbidden
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.auth import Principal

__all__ = [
    "ADMIN_VIEW",
    "NO_VIEW",
    "READER_VIEW",
    "HostStatus",
    "ListGrants",
    "Policy",
    "ViewGrants",
    "policy_for",
]

log = logging.getLogger(__name__)

MEMO_ENTRIES = 8192
"""Decisions remembered (least recently added first out): callers x rules x targets."""

HostStatus = Literal["all", "unknown-only", "none"]


@dataclass(frozen=True, slots=True)
class ViewGrants:
    """What the detail view (listing or show) may show the caller."""

    extended_attributes: bool  # os-extended-server-attributes: OS-EXT-SRV-ATTR:*
    host_status: HostStatus  # show:host_status, else show:host_status:unknown-only
    flavor_extra_specs: bool  # show:flavor-extra-specs (2.47+)
    fault_details: bool  # context_is_admin (a 500 fault's details)


ADMIN_VIEW: Final = ViewGrants(True, "all", True, True)
"""What Nova's defaults show an administrator."""
READER_VIEW: Final = ViewGrants(False, "none", True, False)
"""What Nova's defaults show a reader or member of the server's project."""
NO_VIEW: Final = ViewGrants(False, "none", False, False)
"""Nothing the policy guards (before a decision is made)."""


@dataclass(frozen=True, slots=True)
class ListGrants:
    """What a listing (``GET /servers`` or ``/servers/detail``) may do for the caller."""

    rule: str  # servers:index or servers:detail
    allowed: bool
    all_tenants_rule: str
    all_tenants: bool
    all_filters: bool
    admin: bool  # context_is_admin
    view: ViewGrants


class Policy:
    """Nova's rules in oslo.policy's ``Enforcer`` (see the module docstring)."""

    def __init__(self, policy_file: Path | None = None, admin_role: str = "admin") -> None:
        conf = cfg.ConfigOpts()
        conf(args=[], default_config_files=[], default_config_dirs=[], use_env=False)
        self.policy_file = policy_file.resolve() if policy_file is not None else None
        self._enforcer = oslo_policy.Enforcer(
            conf,
            policy_file=str(self.policy_file) if self.policy_file is not None else None,
            use_conf=self.policy_file is not None,
        )
        conf.set_override("policy_dirs", [], group="oslo_policy")
        defaults = rules.nova_defaults(f"role:{admin_role}")
        self._enforcer.register_defaults(defaults)
        if self.policy_file is None:
            self._enforcer.set_rules(
                oslo_policy.Rules({d.name: d.check for d in defaults}), use_conf=False
            )
        else:
            if not self.policy_file.is_file():
                raise FileNotFoundError(f"policy file not found: {self.policy_file}")
            self._load()  # a broken file stops start-up, not a request
            self._enforcer.use_conf = False  # reloads happen in refresh() only
        self._failed_mtime: float | None = None
        # oslo.policy spends ~0.1 ms per decision (inspect.getfullargspec for every
        # check); decisions are pure functions of the rules, credentials and target, so
        # they are remembered until the rules change.
        self._memo: OrderedDict[Hashable, bool] = OrderedDict()
        self._rules_seen: object = self._enforcer.rules

    def refresh(self) -> None:
        """Re-read the policy file if it changed since it was last read (oslo.policy
        compares its modification time); on failure keep the rules in force."""
        if self.policy_file is None:
            return
        self._enforcer.use_conf = True
        try:
            self._load()
        except Exception as exc:  # a half-written or deleted file must not fail requests
            self._log_failure(exc)
        finally:
            self._enforcer.use_conf = False
        if self._enforcer.rules is not self._rules_seen:  # oslo.policy read the file again
            self._memo.clear()
            self._rules_seen = self._enforcer.rules

    def _load(self) -> None:
        """oslo.policy's ``load_rules`` (a no-op unless the file changed), its warnings
        (a renamed rule overridden by its old name, say) logged rather than raised."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self._enforcer.load_rules()
        for warning in caught:
            log.warning("policy file %s: %s", self.policy_file, warning.message)

    def _log_failure(self, exc: Exception) -> None:
        try:
            mtime: float | None = self.policy_file.stat().st_mtime if self.policy_file else None
        except OSError:
            mtime = None
        if mtime != self._failed_mtime or mtime is None:
            log.error("policy file %s not reloaded, rules kept: %r", self.policy_file, exc)
        self._failed_mtime = mtime

    def allowed(
        self,
        rule: str,
        credentials: Mapping[str, object],
        project: str,
        user: str | None = None,
    ) -> bool:
        """Whether ``rule`` passes for ``credentials`` on a target in ``project`` (and of
        ``user``, when given)."""
        key = (rule, project, user, *((k, _hashable(v)) for k, v in sorted(credentials.items())))
        decision = self._memo.get(key)
        if decision is None:
            target = {"project_id": project}
            if user is not None:
                target["user_id"] = user
            decision = bool(self._enforcer.enforce(rule, target, dict(credentials)))
            self._memo[key] = decision
            if len(self._memo) > MEMO_ENTRIES:
                self._memo.popitem(last=False)
        return decision

    def is_admin(self, credentials: Mapping[str, object]) -> bool:
        """Nova's ``context.is_admin``: the ``context_is_admin`` rule, on the caller's
        own project and user."""
        self.refresh()
        project = str(credentials.get("project_id") or "")
        user = str(credentials.get("user_id") or "")
        return self.allowed(rules.CONTEXT_IS_ADMIN, credentials, project, user)

    def view(self, caller: Principal, project: str, user: str | None = None) -> ViewGrants:
        """What the detail view shows ``caller`` of a server in ``project`` (the target's
        user ``user``, when given)."""
        creds = caller.credentials
        if self.allowed(rules.HOST_STATUS, creds, project, user):
            host_status: HostStatus = "all"
        elif self.allowed(rules.HOST_STATUS_UNKNOWN_ONLY, creds, project, user):
            host_status = "unknown-only"
        else:
            host_status = "none"
        return ViewGrants(
            extended_attributes=self.allowed(rules.EXTENDED_ATTRIBUTES, creds, project, user),
            host_status=host_status,
            flavor_extra_specs=self.allowed(rules.FLAVOR_EXTRA_SPECS, creds, project, user),
            fault_details=caller.is_admin,
        )

    def listing(self, caller: Principal, *, detail: bool) -> ListGrants:
        """The decisions of one listing (index or ``detail``) by ``caller``: the target is
        the caller's own project and user."""
        creds, project, user = caller.credentials, caller.project_id, caller.user_id
        rule = rules.DETAIL if detail else rules.INDEX
        tenants = rules.DETAIL_ALL_TENANTS if detail else rules.INDEX_ALL_TENANTS
        return ListGrants(
            rule=rule,
            allowed=self.allowed(rule, creds, project, user),
            all_tenants_rule=tenants,
            all_tenants=self.allowed(tenants, creds, project, user),
            all_filters=self.allowed(rules.ALL_FILTERS, creds, project, user),
            admin=caller.is_admin,
            view=self.view(caller, project, user),
        )

    def show(self, caller: Principal, project: str) -> ViewGrants:
        """What show may display to ``caller`` of a server of ``project`` (the target),
        or :class:`Forbidden`."""
        if not self.allowed(rules.SHOW, caller.credentials, project):
            raise Forbidden(f"Policy doesn't allow {rules.SHOW} to be performed.")
        return self.view(caller, project)


def _hashable(value: object) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def policy_for(settings: Settings) -> Policy:
    """The policy ``settings`` configure (``policy_file``; the deprecated ``admin_role``)."""
    if settings.admin_role != "admin":
        log.warning(
            "admin_role is deprecated: Nova's policy decides (its context_is_admin rule); "
            "role:%s stands in for that rule's default until a policy file sets it",
            settings.admin_role,
        )
    return Policy(settings.policy_file, settings.admin_role)
