"""nginx with TLS and HTTP/2 in front of a running demo, for bench/page_weight.py --compare.

Production puts TLS and nginx before daphne (deploy/nginx/anju.conf), and a browser speaks
HTTP/2 only over TLS. This runs the same kind of front on this machine: a self-signed
certificate for 127.0.0.1 made with openssl, `listen … ssl http2`, every request and the
websockets proxied to the demo. It runs in the foreground until interrupted; its files live in
a temporary directory removed on exit.

    make demo PORT=8642 &                  # with CSRF_TRUSTED_ORIGINS=https://127.0.0.1:8643
    .venv/bin/python bench/tls_front.py --upstream 127.0.0.1:8642 --port 8643 &
    .venv/bin/python bench/page_weight.py --base http://127.0.0.1:8642 \\
        --compare https://127.0.0.1:8643 --insecure -v

The demo must trust the front's origin for its forms and API posts (Django checks the Origin
of an HTTPS POST): start it with CSRF_TRUSTED_ORIGINS=https://127.0.0.1:<port>.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

CONF = """
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen {host}:{port} ssl http2;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    location / {{
      proxy_pass http://{upstream};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 3600s;
    }}
  }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", default="127.0.0.1:8642", help="the demo's host:port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8643)
    parser.add_argument("--nginx", default=os.environ.get("NGINX_PATH", "/usr/sbin/nginx"))
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="anju-tls-front-"))
    try:
        subprocess.run(  # noqa: S603 (fixed command)
            [
                shutil.which("openssl") or "openssl",
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN={args.host}",
                "-addext", f"subjectAltName=IP:{args.host}",
                "-keyout", str(directory / "key.pem"),
                "-out", str(directory / "cert.pem"),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        conf = directory / "nginx.conf"
        conf.write_text(
            CONF.format(d=directory, host=args.host, port=args.port, upstream=args.upstream)
        )
        nginx = subprocess.Popen([args.nginx, "-p", str(directory), "-c", str(conf)])  # noqa: S603
        print(f"https://{args.host}:{args.port}/ → http://{args.upstream}/ (HTTP/2)", flush=True)

        def stop(*_: object) -> None:
            nginx.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        sys.exit(nginx.wait())
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
