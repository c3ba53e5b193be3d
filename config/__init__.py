"""Compatibility: Milepost's settings, ASGI and Celery entry points live in the `milepost`
package (so an installed Milepost adds no generic top-level `config` package to a team's
environment). These modules keep the old names working in a checkout, for deployments and
scripts that still say `config.settings`, `config.asgi:application` or `celery -A config`.
The wheel does not carry this package."""
