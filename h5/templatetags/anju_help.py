"""`{% consult_help template %}`: 「请拨打咨询电话 0755-…、0755-…（工作日 …）」 with the numbers
as tap-to-call links, from the agreement template's contacts or the site's defaults
(signing/agreements/consult.py). Pages whose agreements come from the API refresh it with the API's
`help` (h5/static/h5/lib/consult.js)."""

from __future__ import annotations

from django import template

from signing.agreements.consult import consult_help as consult_help_for

register = template.Library()


@register.inclusion_tag("h5/signing/_help.html")
def consult_help(agreement_template=None):
    return {"help": consult_help_for(agreement_template)}
