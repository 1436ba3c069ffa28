import pytest

from sms.models import DevInboxMessage

pytestmark = pytest.mark.django_db


def test_dev_sms_page_lists_console_messages_in_debug(client, settings):
    settings.DEBUG = True
    DevInboxMessage.objects.create(phone="13800138000", text="【安居】验证码为123456")
    response = client.get("/dev/sms/")
    assert response.status_code == 200 and "123456" in response.content.decode()


def test_dev_sms_page_does_not_exist_without_debug(client, settings):
    settings.DEBUG = False
    DevInboxMessage.objects.create(phone="13800138000", text="【安居】验证码为123456")
    response = client.get("/dev/sms/")
    assert response.status_code == 404 and "123456" not in response.content.decode()
