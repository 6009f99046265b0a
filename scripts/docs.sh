#!/usr/bin/env bash
# The docs site (scripts/test.sh docs): antsibull-docs lints the collection's
# documentation, writes its pages - every role entry point, filter and module,
# plus the guides in docs/docsite/rst - and Sphinx builds them to HTML in
# build/docs/html. A broken reference, a missing or empty description, or any
# other warning fails the build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 0700 "$work"
mkdir -m 0700 "$work/rst"

python3 scripts/docs_options.py
antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs .
antsibull-docs --config-file docs/docsite/antsibull-docs.cfg collection \
  --use-current --fail-on-error --cleanup everything --dest-dir "$work/rst" dagsterops.dagster
cp docs/docsite/index.rst "$work/rst/index.rst"
rm -rf build/docs
DAGSTEROPS_DOCS_BUILD=$work sphinx-build -q -b html -c docs/docsite -W --keep-going -n "$work/rst" build/docs/html
echo "docs: build/docs/html/index.html"
