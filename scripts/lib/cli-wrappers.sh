# Sourced by scripts/setup.sh (step 3), the bench and test/integration/cli-bundle.test.ts:
#
#   write_cli_wrappers REPO BIN_DIR NODE_BIN   write BIN_DIR/berth and BIN_DIR/berthd (unchanged
#                                              files are left alone; each write is tmp + rename)
#
# berth runs the one-file CLI bundle through dist/src/bin/berth-launcher.cjs (issue 7: start-up).
# Node parses every certificate named by NODE_EXTRA_CA_CERTS before any JavaScript runs (~35 ms
# here); the CLI speaks no TLS, so its wrapper moves the variable aside, and a berthd the CLI
# starts gets it back (src/cli/daemon-start.ts). berthd keeps it: it talks to registries.

write_cli_wrappers() {
  local repo=$1 bin_dir=$2 node_bin=$3 name target env_line wrapper content tmp
  mkdir -p "$bin_dir"
  for name in berth berthd; do
    target=$repo/dist/src/bin/$name.js
    env_line=
    if [[ $name == berth ]]; then
      target=$repo/dist/src/bin/berth-launcher.cjs
      env_line='if [ -n "${NODE_EXTRA_CA_CERTS+set}" ]; then export BERTH_SAVED_NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; fi
'
    fi
    wrapper=$bin_dir/$name
    content="#!/bin/sh
# Installed by $repo/scripts/setup.sh
if [ ! -f '$target' ]; then
  echo '$name: $target does not exist; run \"npm run build\" in $repo' >&2
  exit 127
fi
${env_line}exec '$node_bin' '$target' \"\$@\"
"
    if [[ -f $wrapper ]] && [[ $(cat "$wrapper"; echo x) == "${content}x" ]]; then
      printf '    %s\n' "$wrapper up to date" >&2
    else
      tmp=$(mktemp "$bin_dir/.$name.XXXXXX")
      printf '%s' "$content" >"$tmp"
      chmod 0755 "$tmp"
      mv -f "$tmp" "$wrapper"
      printf '    %s\n' "wrote $wrapper -> $target" >&2
    fi
  done
}
