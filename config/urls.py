from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.views import favicon
from h5.verify_views import verify_page
from mobile_api.health import healthz

admin.site.site_header = "安居 · 选房签约管理后台"
admin.site.site_title = "安居管理后台"
admin.site.index_title = "工作人员首页"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("verify/<str:code>/", verify_page, name="verify"),
    path("verify/<str:code>", verify_page),
    path("admin/", admin.site.urls),
    path("api/v1/", include("mobile_api.urls")),
    path("auth/oidc/", include("mobile_api.oidc_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script as a file: the Content-Security-Policy allows no inline one.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # Development pages answer 404 unless DEBUG is on (checked per request, in the views).
    path("dev/", include("h5.dev_urls")),
    path("", include("h5.signing_urls")),
    path("", include("h5.urls")),
]
if settings.BENCH_FLOOR_VIEWS:  # bench/confirm_http.py only (mobile_api/floor.py)
    urlpatterns.insert(0, path("", include("mobile_api.floor")))

# Chinese error pages in the area's look: the API's error body, the admin's look, WeUI
# (h5/error_views.py; with DEBUG on, NotFoundMiddleware for every 404).
handler400 = "h5.error_views.bad_request"
handler403 = "h5.error_views.permission_denied"
handler404 = "h5.error_views.not_found"
handler500 = "h5.error_views.server_error"
