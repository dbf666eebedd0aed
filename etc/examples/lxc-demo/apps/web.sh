#!/bin/sh
# The demo web container's application script: serve a page with busybox
# httpd on 127.0.0.1:8080, now and at every boot. Safe to rerun. It gets
# the CTID as $1 and no settings.
set -eu
[ -d /srv/www ] || mkdir -p /srv/www
printf '<h1>%s</h1>\n' "$(hostname)" > /srv/www/index.html
for line in '/bin/ifconfig lo 127.0.0.1 up' '/bin/httpd -p 127.0.0.1:8080 -h /srv/www'; do
  grep -qF "$line" /etc/init.d/rcS || printf '%s\n' "$line" >> /etc/init.d/rcS
done
/bin/ifconfig lo 127.0.0.1 up
pidof httpd >/dev/null 2>&1 || /bin/httpd -p 127.0.0.1:8080 -h /srv/www
