#!/usr/bin/env bash
# One nginx configuration for every test and lab (sourced by tests/lib.sh,
# tests/lab/lab.sh and tests/lab/ha.sh): what differs between them is only
# the contents of the http block.
#
# nginx_conf DIR CONNECTIONS LOGLEVEL < HTTP-BLOCK: writes DIR/nginx.conf, an
# nginx of one worker in the foreground as root (it must read the tests'
# keys and bind in their namespaces), its pid file, error log and temporary
# files in DIR, `CONNECTIONS` per worker, and the http block's lines from
# stdin. Start it with `nginx -c DIR/nginx.conf -e DIR/error.log`.
nginx_conf() {
	local d=$1 conns=$2 level=$3
	mkdir -p "$d/tmp"
	{
		cat <<-EOF
			user root;
			daemon off;
			worker_processes 1;
			pid $d/nginx.pid;
			error_log $d/error.log $level;
			events { worker_connections $conns; }
			http {
			    client_body_temp_path $d/tmp; proxy_temp_path $d/tmp; fastcgi_temp_path $d/tmp;
			    uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
		EOF
		sed 's/^/    /'
		echo "}"
	} >"$d/nginx.conf"
}
