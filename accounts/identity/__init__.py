"""Identity providers: how an applicant proves who they are before a session starts.

`base` holds what every provider shares (the verified identity, the provider protocol, and
the lookup of the applicant it names); `oidc` is the adapter for the province's unified
identity platform (广东省统一身份认证平台). The development provider (ID number + SMS code)
is a form rather than a redirect and lives in `accounts.services`.
"""
