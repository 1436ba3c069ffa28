"""Static files with hashed names, precompressed (issue 16 item 1).

`collectstatic` writes every file twice more: under a name with a hash of its content
(``app.3f2a1b9c0d4e.js``) and that file gzipped beside it (``.gz``; brotli would need a
dependency the project does not have). WhiteNoise (the demo, SERVE_STATIC) and nginx with
``gzip_static`` (production, deploy/nginx/anju.conf) serve the same collected files: the .gz to
a browser that accepts gzip, and a hashed name cached for a year as immutable, since a
changed file gets a new name.

Django's manifest storage hands out hashed names only when DEBUG is off. Here the setting
STATIC_HASHED_URLS decides instead: on in production (the default when DEBUG is off) and in
`make demo` (which collects first, ANJU_STATIC_HASHED=1), off for development and the tests,
which serve the source files through the finders without collecting, so an edited script is
served as it is now and never a stale collected copy.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    # The pages' native ES modules (issue 16 item 5) import each other by relative path
    # (``import { el } from "./lib/dom.js";``): Django rewrites each such import to the
    # imported file's hashed name, so a page and the modules it imports are one immutable set.
    support_js_module_import_aggregation = True

    def url(self, name, force=False):
        if getattr(settings, "STATIC_HASHED_URLS", not settings.DEBUG):
            # force: the hashed name also with DEBUG on (the demo); strict as Django is, a
            # file missing from the manifest is an error rather than an uncached name.
            return super().url(name, force=True)
        return FileSystemStorage.url(self, name)
