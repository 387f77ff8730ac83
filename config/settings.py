"""Settings come from the environment; production differs only by environment variables.

`STEPWISE_PRODUCTION=1` turns on the hardened settings that pass `manage.py check --deploy`.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

PRODUCTION = env.bool("STEPWISE_PRODUCTION", default=False)
DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)
SECRET_KEY = env(
    "DJANGO_SECRET_KEY",
    default="" if PRODUCTION else "dev-only-insecure-key-change-me-0123456789abcdefghijklmnop",
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    # Swagger UI's files served from here, not a CDN (/api/docs/ works offline, under the CSP).
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "labeling",
    "active_learning",
    "training",
    # Failed sign-ins and lockouts (config/login.py); listed last, as its documentation asks.
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    # Last: turns a lockout found during authentication into the 429 answer.
    "axes.middleware.AxesMiddleware",
]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out client before any password is checked.
    "config.login.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASE_URL is always set by `dev.py` (embedded Postgres when the user gave none).
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/stepwise")
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("TEST", {})["NAME"] = env("DATABASE_TEST_NAME", default=None)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "dist"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Throttle counters and cached values. Without Redis each process falls back to its own memory
# (config/cache.py) and says so in the log: labeling needs only Postgres.
CACHES = {
    "default": {
        "BACKEND": "config.cache.FailOpenRedisCache",
        "LOCATION": env(
            "CACHE_URL", default=env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
        ),
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="stepwise"),
        "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 2.0, "retry_after": 5.0},
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Every app's domain errors (config.errors.StepwiseError) answered in one place.
    "EXCEPTION_HANDLER": "config.exception_handler.exception_handler",
    # JSON that cannot be stored (NUL, lone surrogates, >64-bit integers, deep nesting) is a
    # field-level 400 (config/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.Pagination",
    "PAGE_SIZE": 50,
    # Per-user and per-client request budgets (kept in the Redis cache); `login` guards the
    # token endpoint against password guessing.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("STEPWISE_THROTTLE_ANON", default="600/min"),
        "user": env("STEPWISE_THROTTLE_USER", default="1200/min"),
        "login": env("STEPWISE_THROTTLE_LOGIN", default="10/min"),
    },
    # Client address for throttling and the sign-in lockout: REMOTE_ADDR unless this many trusted
    # proxies add X-Forwarded-For (config/login.py `client_ip`).
    "NUM_PROXIES": env.int("STEPWISE_NUM_PROXIES", default=0),
}

# Labeling (docs/task-leasing.md): lease length, the workspace heartbeats every 60 s; labelers
# are admitted after screening at this share of steps agreeing with gold.
STEPWISE_LEASE_SECONDS = env.int("STEPWISE_LEASE_SECONDS", default=300)
STEPWISE_SCREENING_THRESHOLD = env.float("STEPWISE_SCREENING_THRESHOLD", default=0.75)
# Sign-in lockout (config/login.py): at most this many failed attempts per username (and more per
# client address, which many people may share) within the window, then every way to sign in
# answers 429 until it passes.
STEPWISE_LOGIN_MAX_FAILURES = env.int("STEPWISE_LOGIN_MAX_FAILURES", default=10)
STEPWISE_LOGIN_MAX_FAILURES_PER_ADDRESS = env.int(
    "STEPWISE_LOGIN_MAX_FAILURES_PER_ADDRESS", default=50
)
STEPWISE_LOGIN_WINDOW_SECONDS = env.int("STEPWISE_LOGIN_WINDOW_SECONDS", default=300)
# django-axes applies that policy to the form, the admin login and POST /api/labeling/token/.
AXES_HANDLER = "config.login.LoginLockoutHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = "config.login.failure_limit"
AXES_COOLOFF_TIME = "config.login.cool_off"
AXES_CLIENT_IP_CALLABLE = "config.login.client_ip"
AXES_LOCKOUT_CALLABLE = "config.login.locked_out"
AXES_RESET_ON_SUCCESS = True
# A locked-out client's further tries do not extend the window.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_VERBOSE = False
SPECTACULAR_SETTINGS = {
    "TITLE": "stepwise API",
    "DESCRIPTION": "Process supervision: labeling, PRM training and active-learning rounds.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs are for signed-in accounts (either role), as the README says.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The framework's own answers (400/401/403/404/429) documented on every operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_common_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "GoldItemKindEnum": "labeling.apis.GOLD_ITEM_KINDS",
        "RewardModelKindEnum": "training.models.PRMVersion.Kind",
        "TrainingRunKindEnum": "training.models.TrainingRun.Kind",
        # Training and sampling runs share these states.
        "RunStateEnum": "training.models.TrainingRun.State",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content-Security-Policy (django-csp): scripts only from files this server serves, never inline
# (the pages pass data in <script type="application/json">, which is not run); nothing from other
# hosts. Inline styles stay allowed: KaTeX positions every glyph with a style attribute, and
# Swagger UI's page has a <style> block.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Celery: the default queue for web-side work, a dedicated `gpu` queue (concurrency 1) for
# training, scoring and evaluation.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ROUTES = {
    "training.*": {"queue": "gpu"},
    "active_learning.score_*": {"queue": "gpu"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}

# Where PRM checkpoints and other large artifacts live.
STEPWISE_ARTIFACT_DIR = Path(env("STEPWISE_ARTIFACT_DIR", default=str(VAR_DIR / "artifacts")))
# Local pretrained backbones; SmolLM2 is converted into <this>/smollm2-135m-instruct at set-up.
STEPWISE_MODEL_DIR = Path(env("STEPWISE_MODEL_DIR", default=str(VAR_DIR / "models")))
# Generators that sample candidate pools (docs/generation.md), by name. Each names a backend:
# `local` (a causal LM directory: a registered base model's name, a path, or a directory under
# STEPWISE_MODEL_DIR) or `openai` (an OpenAI-compatible server: base_url, model, and the API
# key in the environment variable named by api_key_env). STEPWISE_GENERATORS (JSON) adds
# generators or replaces these by name.
STEPWISE_GENERATORS = {
    "smollm2-local": {
        "backend": "local",
        "model": "smollm2-135m-instruct",
        "force_answer": True,
        "max_new_tokens": 320,
    },
    **env.json("STEPWISE_GENERATORS", default={}),
}
STEPWISE_GENERATOR_DEFAULT = env("STEPWISE_GENERATOR_DEFAULT", default="smollm2-local")
# Public data shipped beside the repository (see ../shared/data/README.md).
STEPWISE_DATA_DIR = Path(env("STEPWISE_DATA_DIR", default=str(BASE_DIR.parent / "shared" / "data")))

# PRM training (docs/training.md). A new version becomes active only if, per kind, its held-out
# `metric` is at least the active version's minus `tolerance`.
STEPWISE_PROMOTION_RULE = env.json(
    "STEPWISE_PROMOTION_RULE",
    default={
        "prm": {"metric": "step_auroc", "tolerance": 0.0},
        "orm": {"metric": "solution_auroc", "tolerance": 0.0},
    },
)
STEPWISE_HELDOUT_FRACTION = env.float("STEPWISE_HELDOUT_FRACTION", default=0.1)
# Training options a version gets unless it sets its own (TrainConfig fields, training/prm/config.py):
# the first 12 layers of the backbone, of which the top 2 train over the frozen rest (computed once
# per solution), so a 2-core CPU retrains SmolLM2 on a few hundred labeled solutions in under 10
# minutes; the higher learning rate lets the fresh head learn in that few steps. BENCHMARKS.md
# "Retrain time" has the measurements; a small backbone with <= 2 layers trains whole.
STEPWISE_TRAIN_DEFAULTS = env.json(
    "STEPWISE_TRAIN_DEFAULTS",
    default={"backbone_layers": 12, "train_layers": 2, "epochs": 2.0, "learning_rate": 1e-3},
)
# No version is promoted on a held-out set smaller than this (unless an admin forces it): an AUROC
# on a dozen steps says nothing. Steps are rated held-out steps (up to the first -1); PRMs only.
STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS = env.int(
    "STEPWISE_PROMOTION_MIN_HELDOUT_SOLUTIONS", default=50
)
STEPWISE_PROMOTION_MIN_HELDOUT_STEPS = env.int("STEPWISE_PROMOTION_MIN_HELDOUT_STEPS", default=200)
# Retrain when this many labelings arrived since the active version's snapshot (0: never).
STEPWISE_RETRAIN_MIN_NEW_LABELS = env.int("STEPWISE_RETRAIN_MIN_NEW_LABELS", default=1000)
STEPWISE_RETRAIN_SCHEDULE_ENABLED = env.bool("STEPWISE_RETRAIN_SCHEDULE_ENABLED", default=False)
STEPWISE_RETRAIN_INTERVAL_HOURS = env.int("STEPWISE_RETRAIN_INTERVAL_HOURS", default=24)
# A running job whose heartbeat is older than this is taken for lost (its worker died). A job
# beats every STEPWISE_JOB_HEARTBEAT_SECONDS from a thread (config.jobs), so a dead worker is
# noticed after six missed beats, by the sweep that runs every minute.
STEPWISE_TRAINING_STALE_SECONDS = env.int("STEPWISE_TRAINING_STALE_SECONDS", default=60)
STEPWISE_JOB_HEARTBEAT_SECONDS = env.float("STEPWISE_JOB_HEARTBEAT_SECONDS", default=10.0)
STEPWISE_TRAINING_MAX_ATTEMPTS = env.int("STEPWISE_TRAINING_MAX_ATTEMPTS", default=2)
# A queued run whose task the broker never took (Redis was down when it started: config.publish)
# is sent by the sweep once it is this old; a younger one may still be in its first publish.
STEPWISE_JOB_PUBLISH_GRACE_SECONDS = env.int("STEPWISE_JOB_PUBLISH_GRACE_SECONDS", default=30)
# A launching round no worker has touched for this long gets its next step sent again (the
# message may have been lost in a broker outage); after the second, longer span it fails with the
# reason (active_learning/launch_sweep.py).
STEPWISE_ROUND_REDRIVE_SECONDS = env.int("STEPWISE_ROUND_REDRIVE_SECONDS", default=120)
STEPWISE_ROUND_STALL_SECONDS = env.int("STEPWISE_ROUND_STALL_SECONDS", default=1800)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
