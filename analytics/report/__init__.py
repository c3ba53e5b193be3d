"""One module per report: its result types and its query. Event-level reports are computed in
the analytics store (ClickHouse, analytics/store.py); see README "Analytics"."""
