"""Django's PostgreSQL backend with an outage breaker (base.py): `milepost.postgresql`."""
