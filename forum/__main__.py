"""``python -m forum``: serve with settings from the environment (FORUM_*)."""

from forum.server import run
from forum.settings import Settings

if __name__ == "__main__":
    run(Settings())
