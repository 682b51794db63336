#!/usr/bin/env python3
"""Renders or lints a Helm chart with the real Helm engine (helm-python-sdk), no `helm` binary.

Used by the `chart` integration test (tests/chart/main.rs), which installs helm-python-sdk into a
virtualenv under the cargo target directory and runs this script with that venv's python.

    render.py render CHART_DIR [--name NAME] [--namespace NS]   values as JSON on stdin
    render.py lint   CHART_DIR [--namespace NS] [--kube-version V]   values as JSON on stdin

Prints one JSON object on stdout:
    render: {"ok": true, "manifests": {template path: text}, "crds": [{"filename", "data"}]}
    lint:   {"ok": true, "report": {...helm lint report...}}
    any Helm error: {"ok": false, "error": {"type": exception class, "message": text}}
Exit status: 0 on success, 2 on a Helm error, 1 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys

import helm_python as helm


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["render", "lint"])
    parser.add_argument("chart")
    parser.add_argument("--name", default="iothub-access-operator")
    parser.add_argument("--namespace", default="iothub-access-operator")
    parser.add_argument("--kube-version", default="v1.28.0")
    args = parser.parse_args()

    raw = sys.stdin.read().strip()
    values = json.loads(raw) if raw else {}

    try:
        if args.command == "render":
            with helm.Chart.load(args.chart) as chart:
                # Rendering coalesces the values with the chart defaults and validates them against
                # values.schema.json first, exactly like `helm install` and `helm template`.
                manifests = chart.render(
                    values, name=args.name, namespace=args.namespace, is_install=True
                )
                crds = [{"filename": c["filename"], "data": c["data"]} for c in chart.crds]
            out = {"ok": True, "manifests": manifests, "crds": crds}
        else:
            report = helm.lint(
                args.chart,
                values,
                strict=True,
                namespace=args.namespace,
                kube_version=args.kube_version,
            )
            out = {"ok": True, "report": report}
    except helm.HelmError as exc:
        out = {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc)}}
        json.dump(out, sys.stdout)
        return 2

    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
