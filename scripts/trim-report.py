#!/usr/bin/env python3
"""Keeps what the generated docs show of a report.json: check statuses and first detail
lines, no evidence.

    scripts/trim-report.py REPORT.json OUT.json LABEL_FIELD=VALUE
"""
import json
import sys

src, dst, label = sys.argv[1:]
field, value = label.split("=", 1)
r = json.load(open(src))
trim = {
    field: value,
    "run_id": r["run_id"],
    "finished_at": r["finished_at"],
    "components": r["components"],
    "summary": r["summary"],
    "checks": [
        {"id": c["id"], "title": c["title"], "status": c["status"],
         "detail": (c["detail"].splitlines() or [""])[0][:300]}
        for c in r["checks"]
    ],
}
json.dump(trim, open(dst, "w"), indent=2)
print(f"wrote {dst}")
