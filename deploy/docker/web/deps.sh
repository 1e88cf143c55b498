#!/bin/sh
# Make node_modules (a volume) match package-lock.json, then run the command.
# node_modules/.dockwork-lock is the lock file it was installed from: when it differs, the
# image's copy (/opt/web, installed at build time) is used if it matches, else npm ci.
set -eu
lock=package-lock.json
if ! cmp -s "$lock" node_modules/.dockwork-lock; then
    if cmp -s "$lock" /opt/web/node_modules/.dockwork-lock; then
        echo "deps: node_modules filled from the image (installed from this package-lock.json)" >&2
        find node_modules -mindepth 1 -maxdepth 1 -exec rm -rf {} +
        cp -a /opt/web/node_modules/. node_modules/
    else
        echo "deps: npm ci (package-lock.json is newer than the image: rebuild it to skip this)" >&2
        npm ci
        cp "$lock" node_modules/.dockwork-lock
    fi
fi
exec "$@"
