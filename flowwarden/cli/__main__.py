"""``python -m flowwarden.cli`` (and ``spark-submit .../flowwarden/cli/__main__.py``)."""

from flowwarden.cli.app import main

if __name__ == "__main__":
    main()
