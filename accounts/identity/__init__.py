"""Identity providers: how an applicant proves who they are before a session starts.

`base` holds what every provider shares (the verified identity, the provider protocol, and
the lookup of the applicant it names); `oidc` is the adapter for the province's unified
identity platform (广东省统一身份认证平台). The development provider (ID number + SMS code)
is a form rather than a redirect and lives in `accounts.services`.
"""

# How each provider is named where staff read it (the login devices list); the name is the
# one recorded on the device session.
LABELS = {"dev_sms": "身份证号码 + 短信验证码（开发环境）", "oidc": "广东省统一身份认证平台"}


def provider_label(name: str) -> str:
    return LABELS.get(name, name)
