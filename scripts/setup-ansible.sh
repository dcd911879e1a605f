#!/bin/bash
# The lab's Ansible controller (issue 8's fleet test): ansible-core 2.16 from PyPI in a venv.
# 2.16 because it is the last release that still drives Python 2.7 targets (CentOS 7 dom0 of
# XenServer 7.x / XCP-ng 8.2), so the role is tested with what a dom0 fleet must use.
# Idempotent (seconds when done); prints the venv's bin directory on stdout.
set -euo pipefail
VENV=${XENRAID_ANSIBLE_VENV:-/var/tmp/xenraid-lab/ansible-venv}
if ! "$VENV/bin/ansible-playbook" --version 2>/dev/null | grep -q 'core 2\.16\.'; then
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check 'ansible-core>=2.16,<2.17' >&2
fi
echo "$VENV/bin"
