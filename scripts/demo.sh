#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A five-minute tour: applies examples/ from a fresh Git repository to a
# scratch "host" folder, then shows status, history and what to try next.
#
# usage: scripts/demo.sh        (binary from $DRIFTLESS, default build/driftless)
#
# Nothing outside the scratch folder /tmp/driftless-demo.XXXXXX is touched:
# every path the manifests name is resolved under its root/ (--root).

set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
dl=${DRIFTLESS:-$src/build/driftless}
case "$dl" in /*) ;; *) dl=$PWD/$dl ;; esac
if ! [ -x "$dl" ]; then
	echo "demo: no driftless binary at '$dl'; build it first with 'make'" >&2
	exit 1
fi
command -v git >/dev/null || { echo "demo: git is needed" >&2; exit 1; }

scratch=$(mktemp -d /tmp/driftless-demo.XXXXXX)
repo=$scratch/infra
root=$scratch/root
state=$scratch/state
trap 'echo; echo "demo: stopped on an error; everything is in $scratch" >&2' ERR

# The infrastructure repository: a copy of examples/, one commit.
cp -R "$src/examples" "$repo"

# This "host" gets an age identity, and the repository a database password
# sealed for it: Git only ever holds the ciphertext.
"$dl" secret keygen --identity "$scratch/identity.age" >"$scratch/recipient" 2>/dev/null
mkdir -p "$repo/base/secrets"
printf 'demo-only-password\n' | "$dl" secret seal -r "$(cat "$scratch/recipient")" \
	>"$repo/base/secrets/db-password.age"
cat >"$repo/base/db-password.yaml" <<'EOF'
# Sealed with: driftless secret seal -r <this host's recipient>
apiVersion: driftless/v1
kind: Secret
metadata: {name: db-password}
spec:
  path: /etc/app/db-password
  source: secrets/db-password.age
  mode: "0600"
  dependsOn: [Directory/etc-app]
EOF
git -C "$repo" init -q -b main
git -C "$repo" config user.name "Demo Operator"
git -C "$repo" config user.email "operator@example.com"
git -C "$repo" add -A
git -C "$repo" commit -q -m "shop: initial infrastructure"

# The "host": an empty skeleton with the usual top-level folders.
mkdir -p "$root/etc" "$root/srv" "$root/opt"

src_args=(--repo "$repo" --root "$root" --state "$state" --identity "$scratch/identity.age")

echo "driftless demo in $scratch"
echo "  infra/  the Git repository (a copy of examples/)"
echo "  root/   the host: /etc/app is root/etc/app"
echo "  state/  driftless's database, Git cache and backups"
echo "  identity.age  this host's age key (base/db-password.yaml is a Secret sealed for it)"
echo
echo "\$ driftless apply --repo infra --root root --state state"
"$dl" apply "${src_args[@]}"
echo
echo "\$ driftless status --state state"
"$dl" status --state "$state"
echo
echo "\$ driftless history --state state"
"$dl" history --state "$state"
echo
echo "What landed on the host:"
(cd "$root" && find . -mindepth 1 \( -type l -printf '  %M  /%P -> %l\n' \
	-o -printf '  %M  /%P\n' \) | LC_ALL=C sort -k2)

cat <<EOF

Try next (copy and paste):

  D=$dl S=$scratch
  cd \$S/infra

  # change a file in Git, preview, apply
  sed -i 's/workers = 4/workers = 8/' base/files/app.conf
  git commit -qam 'app: more workers'
  \$D plan  --repo \$S/infra --root \$S/root --state \$S/state
  \$D apply --repo \$S/infra --root \$S/root --state \$S/state

  # remove a resource from Git: apply prunes it from the host
  git rm -q hosts/web-01/features.yaml && git commit -qm 'web: drop feature flags'
  \$D apply --repo \$S/infra --root \$S/root --state \$S/state

  # drift: change the host by hand, see it, repair it
  echo 'hand edit' >> \$S/root/etc/motd
  \$D plan  --repo \$S/infra --root \$S/root --state \$S/state
  \$D apply --repo \$S/infra --root \$S/root --state \$S/state

  # commit a broken manifest: validate names FILE:LINE:COL, apply refuses
  # the whole revision, and rollback is a Git revert
  sed -i 's/mode: "0644"/mode: 0644/' base/motd.yaml
  git commit -qam 'motd: oops'
  \$D validate --repo \$S/infra
  \$D apply --repo \$S/infra --root \$S/root --state \$S/state
  git revert --no-edit HEAD
  \$D apply --repo \$S/infra --root \$S/root --state \$S/state
  \$D history --state \$S/state

  # secrets: the plan shows digests, never the password
  printf 'rotated\\n' | \$D secret seal -r \$(cat \$S/recipient) > base/secrets/db-password.age
  git commit -qam 'db: rotate password'
  \$D plan --repo \$S/infra --root \$S/root --state \$S/state --identity \$S/identity.age

  # the hotfix path (with the agent running, see below): suspend, fix by
  # hand, list the drift, capture it into a commit of a clone, resume, report
  \$D suspend --state \$S/state --for 30m --reason "INC-1: demo"
  echo 'hot fix' >> \$S/root/etc/motd
  \$D drift --state \$S/state --identity \$S/identity.age
  git clone -q \$S/infra \$S/clone
  \$D capture --state \$S/state --identity \$S/identity.age --into \$S/clone
  \$D resume --state \$S/state
  \$D report --state \$S/state --since 1d -o html > \$S/report.html

When done: rm -rf $scratch
EOF

# The agent keeps the host equal to Git from here on. In a terminal it runs
# in the foreground until Ctrl-C; elsewhere (CI, a pipe) it is only shown.
agent_cmd=("$dl" agent --repo "$scratch/infra" --root "$scratch/root" --state "$scratch/state"
	--identity "$scratch/identity.age" --interval 5s)
if [ -t 0 ] && [ -t 1 ]; then
	cat <<EOF2

Now the agent runs on it (Ctrl-C to stop). In another terminal try:
  echo 'hand edit' >> $scratch/root/etc/motd; cat $scratch/root/etc/motd
  (it is repaired before cat can see it), or commit to $scratch/infra and
  watch it applied within 5 s; then 'driftless status --state $scratch/state'.

EOF2
	exec "${agent_cmd[@]}"
else
	echo
	echo "To keep the host equal to Git, run the agent (Ctrl-C to stop):"
	echo "  ${agent_cmd[*]}"
fi
