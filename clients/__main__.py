"""``python -m clients``: the ``forum`` command line (same as the ``forum`` script)."""

from clients.cli import main

if __name__ == "__main__":
    main()
