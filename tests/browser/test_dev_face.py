"""The development face provider's page (/dev/face/<id>/): its two decision buttons stay
where they are while the page learns whether the camera opens.

The camera's answer comes whenever the phone gives it (a permission prompt, a busy device):
if the page then grew a line of text or the photo picker above the buttons, a finger (or a
test's tap) aimed at 「模拟不通过」 would land on the gap or on 「模拟通过」. The test holds
the camera's answer, measures the buttons, lets the answer come (refused, then granted on a
second page), and measures again."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from signing.face.dev import DevFaceProvider
from tests.browser.conftest import RESULTS
from tests.browser.test_signing_flow import NAME

pytestmark = pytest.mark.browser

# getUserMedia answers only when the test says so: window.cameraAnswer(true | false).
HELD_CAMERA = """
(() => {
  let settle;
  const answer = new Promise((resolve) => { settle = resolve; });
  window.cameraAnswer = (granted) => settle(granted);
  navigator.mediaDevices.getUserMedia = () => answer.then((granted) => {
    if (!granted) throw new DOMException("denied", "NotAllowedError");
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 64;
    canvas.getContext("2d").fillRect(0, 0, 64, 64);
    return canvas.captureStream(1);
  });
})();
"""


def _face_page(live_url: str) -> str:
    start = DevFaceProvider().start(
        order_id="fc_layout_check",
        real_name=NAME,
        id_number="440305199001017307",
        return_url=f"{live_url}/h5/",
        callback_url=f"{live_url}/api/v1/face/callback/dev/",
    )
    return urlsplit(start.redirect_url).path


def _boxes(page) -> list[dict]:
    return [
        page.get_by_role("button", name=name, exact=True).bounding_box()
        for name in ("模拟通过", "模拟不通过")
    ]


@pytest.mark.parametrize(
    ("granted", "hint"),
    [
        (False, "未能打开摄像头（未授权或不支持），可拍照预览，或直接选择模拟结果"),
        (True, "请将面部置于圆框内（画面仅在本机显示）"),
    ],
)
def test_the_buttons_do_not_move_when_the_camera_answers(page, live_url, orm, granted, hint):
    page.add_init_script(HELD_CAMERA)
    page.goto(orm(_face_page, live_url))
    expect(page.locator("#face-hint")).to_have_text(
        "正在请求摄像头权限…（首次人脸识别需允许摄像头系统权限）"
    )
    before = _boxes(page)
    page.evaluate(f"window.cameraAnswer({'true' if granted else 'false'})")
    expect(page.locator("#face-hint")).to_have_text(hint)
    if granted:
        expect(page.locator("#face-video")).to_be_visible()
    else:
        expect(page.get_by_text("拍照预览", exact=True)).to_be_visible()
    assert _boxes(page) == before
    page.screenshot(path=str(RESULTS / f"dev-face-camera-{'on' if granted else 'off'}.png"))
