"""Settings, all read from the environment with working single-machine defaults (see README)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from caseapi.env import MEDIA_TYPE_PATTERN, envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("CASEAPI_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", False)
# Only the test runner itself: no environment variable can make a deployment "testing", so
# secrets are never defaulted and HTTPS hardening never skipped outside DEBUG.
TESTING = "pytest" in sys.modules

SECRET_KEY = envstr("SECRET_KEY")
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = "insecure-development-key-never-use-in-production"  # noqa: S105
    else:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "audit",
    "cases",
    "intercept",
    "outbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "caseapi.security.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "audit.middleware.RequestContextMiddleware",
    "caseapi.dbfaults.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "caseapi.urls"
WSGI_APPLICATION = "caseapi.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "caseapi.context_processors.system_use_notice",
            ],
        },
    },
]

# Database: DATABASE_URL, default an SQLite file under var/.
_default_sqlite = f"sqlite:///{VAR_DIR / 'caseapi.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL") or _default_sqlite,
        conn_max_age=envint("DB_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE transactions take the write lock up front, so concurrent writers
    # queue on busy_timeout instead of failing on a lock upgrade.
    # REPLACE deletes the old row silently unless recursive triggers are on: with them, the
    # append-only DELETE triggers refuse it too.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA recursive_triggers = ON;"}
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _timeout_ms = envint("DB_STATEMENT_TIMEOUT_MS", 30000, minimum=0)
    DATABASES["default"].setdefault("OPTIONS", {}).update({"options": f"-c statement_timeout={_timeout_ms}"})
    # Parameters bound by the server, and every statement run DB_PREPARE_THRESHOLD times on a
    # connection prepared there: the requests' queries are the same few texts, so PostgreSQL
    # plans each once per connection instead of on every request (the scoped queries spent
    # longer in planning than in execution). Behind a pooler in transaction mode, which cannot
    # keep a session's prepared statements, set DB_PREPARE_THRESHOLD=0 (never prepare).
    if envbool("DB_SERVER_SIDE_BINDING", True):
        DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
        _prepare_after = envint("DB_PREPARE_THRESHOLD", 5, minimum=0)
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = _prepare_after or None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTHENTICATION_BACKENDS = [
    "cases.authentication.LockoutModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
GUARDIAN_USER_OBJ_PERMS_MODEL = "cases.CaseUserObjectPermission"
GUARDIAN_GROUP_OBJ_PERMS_MODEL = "cases.CaseGroupObjectPermission"
ANONYMOUS_USER_NAME = None

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(VAR_DIR / "static")))

# Evidence content lives in its own storage (a local folder by default).
EVIDENCE_ROOT = Path(envstr("EVIDENCE_ROOT", str(VAR_DIR / "evidence")))
PACKET_ROOT = Path(envstr("PACKET_ROOT", str(VAR_DIR / "packets")))
EVIDENCE_MAX_UPLOAD_BYTES = envint("EVIDENCE_MAX_UPLOAD_BYTES", 2 * 1024**3, minimum=1)
# Media types accepted for stored evidence, as detected from the content's first bytes (never
# from the file name or the declared type); `type/*` accepts a whole family.
EVIDENCE_ALLOWED_TYPES = envlist(
    "EVIDENCE_ALLOWED_TYPES",
    [
        # pictures and screenshots
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/tiff",
        "image/bmp",
        "image/heic",
        "image/avif",
        # documents
        "application/pdf",
        "application/rtf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        # recordings
        "video/mp4",
        "video/x-m4v",
        "video/quicktime",
        "video/3gpp",
        "video/webm",
        "video/x-matroska",
        "video/x-msvideo",
        "video/mpeg",
        "audio/mpeg",
        "audio/mp4",
        "audio/aac",
        "audio/ogg",
        "audio/x-wav",
        "audio/x-flac",
        "audio/amr",
        # chat exports, transcripts, saved pages and ad captures
        "text/plain",
        "text/csv",
        "text/html",
        "application/json",
        "application/xml",
        "application/warc",
        # exports that bundle the above (chat exports with media, subpoena returns)
        "application/zip",
        "application/gzip",
        # a zero-byte file (nothing in it to run)
        "application/x-empty",
    ],
    pattern=MEDIA_TYPE_PATTERN,
)
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(EVIDENCE_ROOT), "file_permissions_mode": 0o440},
    },
    "packets": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(PACKET_ROOT), "file_permissions_mode": 0o440},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = envint("FILE_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024, minimum=0)
FILE_UPLOAD_HANDLERS = ["cases.uploads.HashingUploadHandler"]
FILE_UPLOAD_TEMP_DIR = envstr("FILE_UPLOAD_TEMP_DIR")
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024, minimum=1024)

# Authentication policy.
AUTH_TOKEN_TTL = timedelta(hours=envint("AUTH_TOKEN_TTL_HOURS", 12, minimum=1))
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW = timedelta(minutes=envint("LOGIN_FAILURE_WINDOW_MINUTES", 15, minimum=1))
LOGIN_LOCKOUT_COOLOFF = timedelta(minutes=envint("LOGIN_LOCKOUT_COOLOFF_MINUTES", 60, minimum=1))
SYSTEM_USE_NOTICE = envstr(
    "SYSTEM_USE_NOTICE",
    "You are accessing a restricted law-enforcement information system. Use is limited to "
    "authorized personnel for official purposes. All activity is monitored and recorded; "
    "unauthorized use may result in criminal prosecution and civil penalties. By logging in "
    "you consent to this monitoring.",
)

PHONE_DEFAULT_REGION = envstr("PHONE_DEFAULT_REGION", "US")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cases.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "caseapi.pagination.CappedPageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "caseapi.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON only: every body is a JSON document (nested lists and objects that forms cannot
    # carry), and a body nested too deeply to decode is a 400 (caseapi.api.JSONParser). The
    # evidence upload takes multipart too (cases.api.views.EvidenceListCreateView).
    "DEFAULT_PARSER_CLASSES": ["caseapi.api.JSONParser"],
    "DEFAULT_THROTTLE_RATES": {
        "login": envstr("LOGIN_THROTTLE_RATE", "30/min"),
        "packets": envstr("PACKET_THROTTLE_RATE", "10/min"),
        # caseapi.throttling: batches per ingest source, and ingest requests per client address
        # (counted before the signature is checked).
        "ingest": envstr("INGEST_THROTTLE_RATE", "300/min"),
        "ingest_address": envstr("INGEST_ADDRESS_THROTTLE_RATE", "600/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
MAX_PAGE_SIZE = envint("MAX_PAGE_SIZE", 200, minimum=1)

SPECTACULAR_SETTINGS = {
    "TITLE": "caseapi",
    "DESCRIPTION": "Case management for anti-trafficking intercept operations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No third-party validator badge: the docs load nothing from outside (caseapi.security CSP).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Every operation also declares the errors the framework answers on any route (503, and
    # 413/415 with a body): caseapi.api.declare_common_errors.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "caseapi.api.declare_common_errors"],
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "cases.models.CaseStatus",
        "LeadStatusEnum": "cases.models.LeadStatus",
        "EvidenceStatusEnum": "cases.models.EvidenceStatus",
        "IdentifierKindEnum": "cases.models.IdentifierKind",
        "TeamRoleEnum": "cases.models.TeamRole",
        "CaseKindEnum": "cases.models.CaseKind",
        "EvidenceKindEnum": "cases.models.EvidenceKind",
        "CustodyActionEnum": "cases.models.CustodyAction",
        "AuditActionEnum": "audit.models.AuditAction",
    },
}

# Audit log: chain sealing, signed checkpoints and their external sink (docs/audit.md).
AUDIT_LOG_ORIGIN = envstr("AUDIT_LOG_ORIGIN", "caseapi.local/audit")
AUDIT_SIGNING_KEY = envstr("AUDIT_SIGNING_KEY")
AUDIT_SIGNING_KEY_FILE = envstr("AUDIT_SIGNING_KEY_FILE", str(VAR_DIR / "audit-signing.key"))
if not (DEBUG or TESTING or AUDIT_SIGNING_KEY or Path(AUDIT_SIGNING_KEY_FILE).is_file()):
    # Only development generates a key; checked here so that a deployment fails at start,
    # not at its first checkpoint.
    raise ImproperlyConfigured(
        f"AUDIT_SIGNING_KEY, or an AUDIT_SIGNING_KEY_FILE that exists, is required when DEBUG is off "
        f"(no file at {AUDIT_SIGNING_KEY_FILE})"
    )
AUDIT_CHECKPOINT_DIR = envstr("AUDIT_CHECKPOINT_DIR", str(VAR_DIR / "checkpoints"))
AUDIT_CHECKPOINT_SINK = envstr("AUDIT_CHECKPOINT_SINK", "audit.sinks.DirectorySink")
AUDIT_SEAL_BATCH = envint("AUDIT_SEAL_BATCH", 1000, minimum=1)
# Seal right after each audited transaction commits, in-process. On by default when tasks run
# in-process (no broker); with a broker, the sequencer (manage.py audit_sequencer, or the
# beat task) seals instead.
AUDIT_SEAL_ON_COMMIT = envbool("AUDIT_SEAL_ON_COMMIT", not envstr("CELERY_BROKER_URL"))
# Benchmarks only (bench/audit.py measures the cost of auditing against this): with recording
# off, /readyz fails and `manage.py check` errors, so no deployment can run this way unnoticed.
AUDIT_RECORDING = envbool("AUDIT_RECORDING", True)
AUDIT_MAX_SEAL_LAG_SECONDS = envint("AUDIT_MAX_SEAL_LAG_SECONDS", 30, minimum=1)
AUDIT_MAX_CHECKPOINT_AGE_SECONDS = envint("AUDIT_MAX_CHECKPOINT_AGE_SECONDS", 300, minimum=1)

# Intercept ingest (machine clients).
INGEST_MAX_BODY_BYTES = envint("INGEST_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024)
INGEST_MAX_ITEMS = envint("INGEST_MAX_ITEMS", 1000, minimum=1)

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: without a broker, tasks run eagerly in the calling process.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = envstr("CELERY_RESULT_BACKEND")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "audit-seal": {"task": "audit.tasks.audit_seal", "schedule": timedelta(seconds=2)},
    "audit-checkpoint": {"task": "audit.tasks.audit_checkpoint", "schedule": timedelta(minutes=1)},
    "ingest-signatures-purge": {
        "task": "intercept.tasks.seen_signatures_purge",
        "schedule": timedelta(minutes=10),
    },
    "ingest-leads-rescore": {"task": "intercept.tasks.leads_rescore", "schedule": timedelta(days=1)},
    "evidence-fixity-sweep": {
        "task": "cases.tasks.evidence_fixity_sweep",
        "schedule": timedelta(hours=envint("EVIDENCE_FIXITY_SWEEP_HOURS", 24, minimum=1)),
    },
    "outbox-relay": {"task": "outbox.tasks.outbox_relay", "schedule": timedelta(seconds=30)},
    "outbox-purge": {"task": "outbox.tasks.outbox_purge", "schedule": timedelta(hours=1)},
    "packets-resume-orphaned": {"task": "cases.tasks.packets_resume_orphaned", "schedule": timedelta(minutes=1)},
}
# Transactional outbox (outbox/): sent rows (and their dedup keys) kept this long; the
# after-commit publish leaves a broker alone this long after finding it down.
OUTBOX_RETENTION = timedelta(days=envint("OUTBOX_RETENTION_DAYS", 7, minimum=1))
OUTBOX_FAST_PATH_BACKOFF = envint("OUTBOX_FAST_PATH_BACKOFF_SECONDS", 5, minimum=0)
# /readyz fails when, with the broker up, outbox work has waited longer than this (no relay).
OUTBOX_MAX_BACKLOG_SECONDS = envint("OUTBOX_MAX_BACKLOG_SECONDS", 300, minimum=1)

# Security headers (and caseapi.security: Content-Security-Policy, no-store on the API);
# production hardening is completed by DEBUG=0 deployments (README).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG and not TESTING:
    SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    # Load balancers probe over plain HTTP; the probes reveal no data.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # security.W021 asks for HSTS preload. Entering the browsers' preload list binds every
        # subdomain of the registered domain and takes months to undo: the domain owner's
        # decision (SECURE_HSTS_PRELOAD=1), not a default. Silenced only while preload is off.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

# Encryption at rest of personal data (caseapi.crypto): FIELD_ENCRYPTION_KEYS is the key ring,
# `id:base64key,...` (32-byte keys), the first one encrypting, all of them opening; BLIND_INDEX_KEY
# (base64, 32 bytes) keys the digests that find identifiers without decrypting. Both are required
# when DEBUG is off; DEBUG and tests derive them from SECRET_KEY. `manage.py rotate_field_keys`.
from caseapi import crypto as _crypto  # noqa: E402 - the parsers live beside the cipher

_field_keys = envstr("FIELD_ENCRYPTION_KEYS")
_blind_key = envstr("BLIND_INDEX_KEY")
if not (_field_keys and _blind_key) and not (DEBUG or TESTING):
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS and BLIND_INDEX_KEY are required when DEBUG is off")
_dev_ring, _dev_blind = _crypto.development_keys(SECRET_KEY)
FIELD_ENCRYPTION_KEYS = _crypto.parse_keys(_field_keys) if _field_keys else _dev_ring
BLIND_INDEX_KEY = _crypto.parse_blind_index_key(_blind_key) if _blind_key else _dev_blind
