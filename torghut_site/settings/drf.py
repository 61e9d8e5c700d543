"""DRF (authenticated, throttled, paginated, one error format), admin sign-in, the schema."""

from __future__ import annotations

import re

from torghut_site.settings.base import TORGHUT_VERSION, env

# --------------------------------------------------------------------------------------------
# DRF: authenticated by default, throttled, paginated, one error format
# --------------------------------------------------------------------------------------------
# GitHub webhook requests accepted per client address (POST /whitepapers/webhooks/github,
# counted before the signature check), written as DRF rates are: <count>/<period>
WHITEPAPER_WEBHOOK_THROTTLE = env.str("WHITEPAPER_WEBHOOK_THROTTLE", default="120/min")
if not re.fullmatch(
    r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", WHITEPAPER_WEBHOOK_THROTTLE
):
    env.problem(
        f"WHITEPAPER_WEBHOOK_THROTTLE={WHITEPAPER_WEBHOOK_THROTTLE!r} is not a rate "
        "(<count>/<s|min|hour|day>, e.g. 120/min)"
    )
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "torghut_site.auth.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's, with the request log as a Redis sorted set when the cache is Redis
    # (torghut_site/throttling.py)
    "DEFAULT_THROTTLE_CLASSES": [
        "torghut_site.throttling.AnonRateThrottle",
        "torghut_site.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="120/min"),
        "user": env.str("API_THROTTLE_USER", default="2400/min"),
        "control": env.str("API_THROTTLE_CONTROL", default="30/min"),
        "webhook": WHITEPAPER_WEBHOOK_THROTTLE,
    },
    "DEFAULT_PAGINATION_CLASS": "torghut_site.drf.LimitOffsetPagination",
    "PAGE_SIZE": 200,
    "EXCEPTION_HANDLER": "torghut_site.drf.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "torghut_site.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["torghut_site.drf.JSONParser"],
}
API_MAX_PAGE_SIZE = 500
# a JSON body nested deeper than this (arrays and objects) is refused with a 400 before the
# view sees it; the parser would otherwise recurse until Python's recursion limit (a 500)
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=64, min_value=2, max_value=500)
# days a new API token lives when its issuer names no TTL (`create_api_token` without
# --ttl-days, the demo bootstrap); 0 = no expiry (the token lives until revoked)
API_TOKEN_DEFAULT_TTL_DAYS = env.int("API_TOKEN_DEFAULT_TTL_DAYS", default=0, min_value=0)
# seconds a token lookup (digest -> token and user) is kept in the shared cache; revoking,
# deleting or saving the token, or saving or deleting its user, drops it at once; 0 = every
# request asks the database (torghut_site.auth)
API_TOKEN_CACHE_SECONDS = env.int("API_TOKEN_CACHE_SECONDS", default=5, min_value=0, max_value=300)

# Admin sign-in (torghut_site.login_guard): after this many failed attempts for one username, or
# from one client address, within ADMIN_LOGIN_LOCKOUT_SECONDS, further attempts from it are
# refused without a password check for ADMIN_LOGIN_LOCKOUT_SECONDS (counters: the default cache)
ADMIN_LOGIN_MAX_FAILURES = env.int("ADMIN_LOGIN_MAX_FAILURES", default=5, min_value=1)
ADMIN_LOGIN_LOCKOUT_SECONDS = env.int("ADMIN_LOGIN_LOCKOUT_SECONDS", default=900, min_value=1)
AUTHENTICATION_BACKENDS = [
    "torghut_site.login_guard.LoginLockoutBackend",  # first: refuses locked sign-ins
    "django.contrib.auth.backends.ModelBackend",
]

SPECTACULAR_SETTINGS = {
    "TITLE": "torghut API",
    "DESCRIPTION": "Trading, order feed, whitepaper and autonomy endpoints of torghut.",
    "VERSION": TORGHUT_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # a decision's `action` and an execution's `side` are the same choice set: one enum
    # one name per choice set used by several answers: a whitepaper run's and step's statuses
    # (not the research runs'), a promotion's mode
    "ENUM_NAME_OVERRIDES": {
        "OrderSideEnum": "trading.models.decisions.OrderSide",
        "WhitepaperRunStatusEnum": "whitepapers.models.RunStatus",
        "WhitepaperStepStatusEnum": "whitepapers.models.StepStatus",
        "PromotionModeEnum": "autonomy.models.PromotionMode",
    },
}
