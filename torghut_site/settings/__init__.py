"""torghut settings: a package by concern, read from environment variables (a `.env` file is
honoured).

Variable names follow the original service so its operators feel at home. Every value is read
through one `torghut_site.env.Env` (`base.env`), which collects problems across the modules below;
this package ends by raising one `ConfigError` that names every bad variable, so no process (web,
worker, beat, consumer) starts with a configuration it would misread. The modules are imported in
this order (a later one may build on an earlier one's values), which is also the order in which
their problems are reported.
"""

# ruff: noqa: I001 (the order of these imports is the order of evaluation)
from torghut_site.settings.base import *  # noqa: F403
from torghut_site.settings.drf import *  # noqa: F403
from torghut_site.settings.workers import *  # noqa: F403
from torghut_site.settings.trading import *  # noqa: F403
from torghut_site.settings.autonomy import *  # noqa: F403
from torghut_site.settings.trading_lanes import *  # noqa: F403
from torghut_site.settings.llm import *  # noqa: F403
from torghut_site.settings.brokers import *  # noqa: F403
from torghut_site.settings.kafka import *  # noqa: F403
from torghut_site.settings.orderfeed import *  # noqa: F403
from torghut_site.settings.signals import *  # noqa: F403
from torghut_site.settings.whitepapers import *  # noqa: F403
from torghut_site.settings.storage import *  # noqa: F403
from torghut_site.settings.notifications import *  # noqa: F403
from torghut_site.settings.base import env

env.raise_if_problems()
