import pytest
from django.contrib.auth.models import Group

from accounts.models import Family, User
from selection.demo import demo_data_load
from selection.models import Seat, Session, Unit

pytestmark = pytest.mark.django_db


def test_demo_data_loads_twice_without_duplicates():
    first = demo_data_load()
    counts = (
        Unit.objects.count(),
        Family.objects.count(),
        Session.objects.count(),
        Seat.objects.count(),
        User.objects.filter(is_staff=True).count(),
    )
    demo_data_load()
    again = (
        Unit.objects.count(),
        Family.objects.count(),
        Session.objects.count(),
        Seat.objects.count(),
        User.objects.filter(is_staff=True).count(),
    )
    assert counts == again == (200, 100, 5, 100, 3)
    assert first.first_family.rank == 1
    assert len({u.building for u in Unit.objects.all()}) >= 4
    assert len({u.layout for u in Unit.objects.all()}) >= 3


def test_families_are_split_into_sessions_in_rank_order():
    demo_data_load()
    for session in Session.objects.order_by("order"):
        ranks = sorted(session.families.values_list("rank", flat=True))
        assert ranks == list(range((session.order - 1) * 20 + 1, session.order * 20 + 1))


def test_one_staff_user_per_role_with_its_group():
    demo_data_load()
    for role in ("operator", "reviewer", "supervisor"):
        user = User.objects.get(username=role)
        assert user.is_staff and not user.is_superuser
        assert list(user.groups.all()) == [Group.objects.get(name=role)]


def test_demo_signing_agreements_load_once():
    from signing.demo import demo_signing_load
    from signing.models import Agreement

    demo_data_load()
    first = demo_signing_load()
    again = demo_signing_load()
    assert len(first) == 3 and [a.pk for a in first] == [a.pk for a in again]
    assert Agreement.objects.filter(status="pending").count() == 3
