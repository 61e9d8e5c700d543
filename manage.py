#!/usr/bin/env python
"""Django's command-line utility for torghut."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torghut_site.settings")
    from django.core.management import execute_from_command_line

    from torghut_site.env import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        sys.stderr.write(exc.render() + "\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
