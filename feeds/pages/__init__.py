"""The pages of the public web, one module per concept; feeds/routes.py lists their routes."""
