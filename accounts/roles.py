"""Staff roles as admin groups, and what each may do.

operator (操作员): schedules rounds and sessions, imports units and families, watches a session,
    exports results (admin views check add_unit / add_family+change_family / add_session+add_seat
    for the staff tools, view rights for export and the live view; see selection.admin_views).
reviewer (审核员): reviews signatures and seals agreements; reads families and results, exports
    results and watches a session, but cannot import or schedule.
operators also run the staff operations (selection.admin_ops): withdraw/restore a unit,
    reschedule a session, change a family's rank or layouts, change an applicant's mobile.
supervisor (主管): everything the other two do, plus the audit trail and SMS records, and staff
    allocation of a unit (工作人员分配).
"""

from __future__ import annotations

OPERATOR = "operator"
REVIEWER = "reviewer"
SUPERVISOR = "supervisor"

ROLE_LABELS = {OPERATOR: "操作员", REVIEWER: "审核员", SUPERVISOR: "主管"}

# (app_label, model) -> actions, per role. Later issues add their models here.
_EDIT = ("view", "add", "change")
ROLE_PERMISSIONS: dict[str, dict[tuple[str, str], tuple[str, ...]]] = {
    OPERATOR: {
        ("signing", "agreement"): ("view", "add"),
        ("signing", "agreementtemplate"): ("view",),
        ("signing", "lease"): ("view",),
        ("signing", "paymentnotification"): ("view",),
        ("accounts", "family"): _EDIT,
        ("accounts", "applicant"): _EDIT,
        ("selection", "round"): _EDIT,
        ("selection", "session"): _EDIT,
        ("selection", "seat"): (*_EDIT, "delete"),
        ("selection", "unit"): _EDIT,
        ("selection", "allocation"): ("view",),
        ("selection", "supplementaryapplication"): ("view",),
    },
    REVIEWER: {
        ("signing", "agreement"): ("view", "review"),
        ("signing", "agreementtemplate"): ("view",),
        ("signing", "lease"): ("view",),
        ("signing", "paymentnotification"): ("view",),
        ("accounts", "family"): ("view",),
        ("accounts", "applicant"): ("view",),
        ("selection", "round"): ("view",),
        ("selection", "session"): ("view",),
        ("selection", "unit"): ("view",),
        ("selection", "allocation"): ("view",),
        ("selection", "supplementaryapplication"): ("view",),
    },
}
ROLE_PERMISSIONS[SUPERVISOR] = {
    **{
        key: tuple(
            sorted(
                set(ROLE_PERMISSIONS[OPERATOR].get(key, ()))
                | set(ROLE_PERMISSIONS[REVIEWER].get(key, ()))
            )
        )
        for key in ROLE_PERMISSIONS[OPERATOR].keys() | ROLE_PERMISSIONS[REVIEWER].keys()
    },
    # Staff allocation (selection.staff_ops.allocation_by_staff): irreversible and outside the
    # rank order, so a supervisor's decision, not an operator's.
    ("selection", "allocation"): ("add", "view"),
    # Publishing a new agreement-template version (signing.agreements.services.template_revise).
    ("signing", "agreementtemplate"): ("add", "view"),
    ("accounts", "auditentry"): ("view",),
    ("accounts", "devicesession"): ("view",),
    ("sms", "smsmessage"): ("view",),
}


def roles_sync(**kwargs) -> None:
    """Create the role groups and give each exactly its permissions. Idempotent; runs after
    every `migrate` (post_migrate), so a new model's grants land with its migration."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    for config in apps.get_app_configs():  # permissions of apps migrated after this one
        create_permissions(config, verbosity=0)
    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = [
            (app, f"{action}_{model}")
            for (app, model), actions in grants.items()
            for action in actions
        ]
        group.permissions.set(
            [
                Permission.objects.get(content_type__app_label=app, codename=codename)
                for app, codename in wanted
            ]
        )
