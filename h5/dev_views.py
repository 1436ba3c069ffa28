from django.conf import settings
from django.http import Http404
from django.shortcuts import render

from sms.models import DevInboxMessage


def sms_inbox(request):
    """Recent messages 'sent' by the console SMS provider, so a demo user can log in."""
    if not settings.DEBUG:
        raise Http404
    return render(request, "h5/dev_sms.html", {"messages_": DevInboxMessage.objects.all()[:50]})
