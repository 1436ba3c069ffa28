from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from signing.face.dev import dev_face_decide, dev_face_session
from signing.lease.payments.dev import dev_pay_confirm, dev_pay_page_context
from sms.models import DevInboxMessage


def sms_inbox(request):
    """Recent messages 'sent' by the console SMS provider, so a demo user can log in."""
    if not settings.DEBUG:
        raise Http404
    return render(request, "h5/dev_sms.html", {"messages_": DevInboxMessage.objects.all()[:50]})


@require_http_methods(["GET", "POST"])
def face_provider_page(request, provider_order_id: str):
    """The simulated face provider's own page (signing/face/dev.py): a camera preview that
    never leaves the phone and 「模拟通过」/「模拟不通过」. The POST is the provider's endpoint:
    it notifies our callback URL, signed, and sends the phone back to the return URL."""
    if not settings.DEBUG:
        raise Http404
    session = dev_face_session(provider_order_id)
    if session is None:
        raise Http404
    if request.method == "POST":
        decision = request.POST.get("decision")
        if decision not in ("pass", "fail"):
            return render(
                request,
                "h5/dev_face.html",
                {"session": session, "error": "请选择模拟结果"},
                status=400,
            )
        # Any file in the request is ignored: the decision is all the provider takes.
        outcome = dev_face_decide(provider_order_id=provider_order_id, passed=decision == "pass")
        if outcome is None:
            raise Http404
        return redirect(outcome.return_url)
    return render(request, "h5/dev_face.html", {"session": session})


@require_http_methods(["GET", "POST"])
def pay_provider_page(request, prepay_id: str):
    """The simulated payment provider's cashier (signing/lease/payments/dev.py), shaped like WeChat
    Pay's: the order and 「确认支付」. The POST is the provider's endpoint: it pays the order,
    notifies our notify URL server to server (signed), and sends the phone back to the return
    URL with ?out_trade_no=."""
    if not settings.DEBUG:
        raise Http404
    context = dev_pay_page_context(prepay_id)
    if context is None:
        raise Http404
    if request.method == "POST":
        outcome = dev_pay_confirm(prepay_id=prepay_id)
        if outcome is None:
            raise Http404
        return redirect(outcome.return_url)
    return render(request, "h5/dev_pay.html", context)
