#!/usr/bin/env bash
# Debian packages and Maven jars the lab (tests, `omwizard rehearse`) needs. Needs root.
# Idempotent: a second run installs nothing new.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system.sh: needs root (it installs Debian packages); run it with sudo" >&2
  exit 2
fi

packages=(
  openssh-server openssh-client net-tools iproute2 iputils-ping tcpdump
  mariadb-server mariadb-client postgresql postgresql-client sudo iptables nftables
  nfs-kernel-server nfs-common tzdata tmux procps util-linux coreutils
  default-jdk-headless maven python3-venv
  ufw firewalld  # the firewall step's ufw and firewalld: only ever run inside lab nodes
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
services=(ssh.service mariadb.service mariadb.socket postgresql.service nfs-server.service
          rpcbind.service rpcbind.socket ufw.service)
enabled_units() {
  for unit in "${services[@]}"; do
    if compgen -G "/etc/systemd/system/*.wants/$unit" >/dev/null; then echo "$unit"; fi
  done
}
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  enabled_before=$(enabled_units)
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # services must not start on install: the lab starts its own, inside its namespaces
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  # ufw stays off on this host: its package enables nothing unless debconf's ufw/enable is
  # true (default false; set false here in case something preseeded it); ENABLED=no in
  # /etc/ufw/ufw.conf makes its boot script a no-op. The lab enables ufw only inside a node.
  echo "ufw ufw/enable boolean false" | debconf-set-selections
  # firewalld would start on install and at boot and put this host behind its default zone:
  # masked first (a link to /dev/null, as `systemctl mask` makes; its postinst leaves masks it
  # did not make), it never runs here. The lab starts it inside a node, on the node's own bus.
  if [[ " ${missing[*]} " == *" firewalld "* ]] && [ ! -e /etc/systemd/system/firewalld.service ]
  then
    mkdir -p /etc/systemd/system
    ln -s /dev/null /etc/systemd/system/firewalld.service
    echo "masked firewalld.service: it never runs on this host (the lab runs it in a node)"
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
  # services this run brought in stay off at boot too: an operator's workstation that only
  # rehearses must not start a public sshd, rpcbind or a database (the lab runs its own)
  disabled=()
  for unit in $(enabled_units); do
    grep -qx "$unit" <<<"$enabled_before" && continue
    if command -v systemctl >/dev/null; then systemctl disable --quiet "$unit" 2>/dev/null
    else rm -f /etc/systemd/system/*.wants/"$unit"  # no systemctl (a chroot): its links
    fi && disabled+=("$unit")
  done
  [ "${#disabled[@]}" -eq 0 ] || echo "left disabled at boot (the lab starts its own): ${disabled[*]}"
fi

if [ -x "$here/.ci/lab-deps.sh" ] || [ -f "$here/.ci/lab-deps.sh" ]; then
  bash "$here/.ci/lab-deps.sh"
fi
