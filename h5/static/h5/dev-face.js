/* The development face provider page (dev_face.html): the camera preview (only on this
 * device) or a photo to preview, then the simulated result. A static file so the
 * Content-Security-Policy needs no inline script. */

const video = document.getElementById("face-video");
if (video) wire(video);

function wire(video) {
  const hint = document.getElementById("face-hint");
  const photo = document.getElementById("face-photo");
  const file = document.getElementById("face-file");
  const fileLabel = document.getElementById("face-file-label");
  const form = document.getElementById("face-form");
  let stream = null;
  let submitted = false;

  function fallback(message) {
    hint.textContent = message;
    fileLabel.classList.remove("anju-held");
  }

  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "user" }, audio: false })
      .then((s) => {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        hint.textContent = "请将面部置于圆框内（画面仅在本机显示）";
      })
      .catch(() => {
        fallback("未能打开摄像头（未授权或不支持），可拍照预览，或直接选择模拟结果");
      });
  } else {
    fallback("此浏览器不能在网页中打开摄像头（需 HTTPS 或 localhost），可拍照预览");
  }

  file.addEventListener("change", () => {
    const picked = file.files && file.files[0];
    if (!picked) return;
    if (photo.src) URL.revokeObjectURL(photo.src);
    photo.src = URL.createObjectURL(picked);
    photo.hidden = false;
    video.hidden = true;
    hint.textContent = "照片仅在本机预览，不会上传";
  });

  form.addEventListener("submit", (event) => {
    if (submitted) {
      event.preventDefault();
      return;
    }
    submitted = true;
    if (stream) for (const track of stream.getTracks()) track.stop();
    if (photo.src) URL.revokeObjectURL(photo.src);
    file.value = "";
  });
}
