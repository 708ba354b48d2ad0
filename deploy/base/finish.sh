#!/bin/sh
# Runs inside the debootstrapped root (chroot) before `docker import`: users, sshd, clean-up.
# Files from deploy/base/ are staged in /tmp/adrange-base/ by deploy/images.py.
set -eu
stage=/tmp/adrange-base
groupadd -g 1000 svc
useradd -u 1000 -g svc -d /srv -M -s /usr/sbin/nologin svc
groupadd -g 1001 team
useradd -u 1001 -g team -G svc -d /home/team -m -s /bin/bash team
passwd -l team >/dev/null
install -m 0755 "$stage/adrange-box" /usr/local/sbin/adrange-box
install -m 0755 "$stage/restart-service" /usr/local/bin/restart-service
install -m 0644 "$stage/sshd.conf" /etc/ssh/sshd_config.d/adrange.conf
rm -f /etc/ssh/ssh_host_*
mkdir -p /srv /run/sshd
cat > /etc/motd <<'MOTD'
adrange game box. Service code: /srv/<name>. After editing, run: restart-service
MOTD
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* "$stage"
