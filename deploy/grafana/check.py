#!/usr/bin/env python3
"""Checks a Grafana dashboard's JSON model the way Grafana would refuse or mis-draw it.

    python3 deploy/grafana/check.py deploy/grafana/estuary.json

Checked: the model's required fields and schema version; every panel's id (unique), type (one
Grafana ships), grid position (inside the 24-column grid, no two panels overlapping); every query
panel's data source (the dashboard's `datasource` variable) and targets (unique refIds, a PromQL
expression whose brackets balance); every variable a query names is defined. (That every metric an
expression names is one estuary exports is checked by tests/operations.rs, against a real scrape.)
Exits 1 and says why on the first file that fails.
"""
import json
import re
import sys

PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "table", "bargauge", "heatmap", "text", "logs"}
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__name", "__all"}


def problems(model):
    found = []
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        if key not in model:
            found.append(f"no '{key}'")
    if model.get("schemaVersion", 0) < 36:
        found.append(f"schemaVersion {model.get('schemaVersion')} is older than Grafana 9")
    variables = {v.get("name") for v in model.get("templating", {}).get("list", [])}
    if "datasource" not in variables:
        found.append("no 'datasource' variable: the dashboard would be tied to one Prometheus")
    ids, cells = set(), {}
    for panel in model.get("panels", []):
        pid, kind, title = panel.get("id"), panel.get("type"), panel.get("title", "?")
        where = f"panel {pid} ({title})"
        if not isinstance(pid, int) or pid in ids:
            found.append(f"{where}: id missing or repeated")
        ids.add(pid)
        if kind not in PANEL_TYPES:
            found.append(f"{where}: unknown type {kind!r}")
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            found.append(f"{where}: gridPos needs integer h, w, x, y")
            continue
        if grid["x"] < 0 or grid["w"] <= 0 or grid["x"] + grid["w"] > 24 or grid["h"] <= 0:
            found.append(f"{where}: outside the 24-column grid")
        for col in range(grid["x"], grid["x"] + grid["w"]):
            for row in range(grid["y"], grid["y"] + grid["h"]):
                if (col, row) in cells:
                    found.append(f"{where}: overlaps panel {cells[(col, row)]}")
                    break
                cells[(col, row)] = pid
            else:
                continue
            break
        if kind == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            found.append(f"{where}: its data source is not the dashboard's variable")
        targets = panel.get("targets", [])
        if not targets:
            found.append(f"{where}: no query")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            found.append(f"{where}: repeated refId")
        for t in targets:
            expr = t.get("expr", "")
            if not expr.strip():
                found.append(f"{where}: an empty expression")
            for opening, closing in ("()", "{}", "[]"):
                if expr.count(opening) != expr.count(closing):
                    found.append(f"{where}: unbalanced {opening}{closing} in {expr}")
            for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expr):
                if name not in variables and name not in BUILTIN_VARIABLES:
                    found.append(f"{where}: ${name} is no variable of the dashboard")
    return found


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for path in argv:
        try:
            with open(path, encoding="utf-8") as f:
                model = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 1
        found = problems(model)
        if found:
            for p in found:
                print(f"{path}: {p}", file=sys.stderr)
            return 1
        print(f"{path}: {len(model['panels'])} panels, valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
