#!/usr/bin/env bash
# Builds the workspace's front-end assets into web/dist, which the civitas
# binary embeds: the U.S. Web Design System (from npm, per web/package-lock.json)
# with the fonts and images its stylesheet uses, and Civitas's own files in
# web/src. Run before `cargo build`; scripts/run.sh and scripts/test.sh do.
set -euo pipefail
cd "$(dirname "$0")/../web"

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is needed to build the workspace's assets (Debian: apt-get install npm)" >&2
    exit 1
fi
npm ci --no-audit --no-fund --loglevel=error

USWDS=node_modules/@uswds/uswds/dist
rm -rf dist.partial
mkdir -p dist.partial/uswds/css dist.partial/uswds/js
cp "$USWDS/css/uswds.min.css" dist.partial/uswds/css/
cp "$USWDS/js/uswds.min.js" "$USWDS/js/uswds-init.min.js" dist.partial/uswds/js/
# Only the fonts and images the stylesheet refers to.
grep -o 'url(\.\./[^)]*)' "$USWDS/css/uswds.min.css" | sed 's/^url(\.\.\///; s/)$//' | sort -u |
    while read -r file; do
        mkdir -p "dist.partial/uswds/$(dirname "$file")"
        cp "$USWDS/$file" "dist.partial/uswds/$file"
    done
# Icons the pages use directly.
for icon in usa-icons-bg/search--white.svg; do
    mkdir -p "dist.partial/uswds/img/$(dirname "$icon")"
    cp "$USWDS/img/$icon" "dist.partial/uswds/img/$icon"
done
cp node_modules/@uswds/uswds/LICENSE.md dist.partial/uswds/LICENSE.md
cp -r src/. dist.partial/
rm -rf dist
mv dist.partial dist
echo "web assets ready in web/dist ($(find dist -type f | wc -l) files, $(du -sh dist | cut -f1))"
