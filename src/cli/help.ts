export const MAIN_HELP = `resident — an in-process extension host for Node.js

Usage:
  resident serve [options]     serve the extensions and filters (SIGHUP reloads them all)
  resident dev [options]       serve, and hot-reload whatever a saved file affects
  resident new <dir>           make a project of extensions: package.json, tsconfig, an extension
                               and its test (--sdk <spec>: what it depends on, e.g. a tarball made
                               by npm pack in a checkout of Resident; default ^<this version>)
  resident new extension <name> | resident new filter <name>
                               add a file and its test to the project in this folder
  resident cgi <entry>         run the extension at <entry> as a CGI program (one request;
                               PATH_INFO /<command> picks the command; for a web server's mod_cgi)
  resident fcgi-worker [options]  serve the extensions and filters as a FastCGI responder
  resident uwsgi-worker [options] the same, as a uwsgi responder (nginx uwsgi_pass)
  resident bench [options]     the same command in every mode and against baselines, side by
                               side (resident bench --help lists its options)
  resident --help | --version

Options for serve:
  -p, --port <n>          port to listen on (default 3000, or $PORT)
  -H, --host <addr>       address to bind (default 127.0.0.1, or $HOST)
  -c, --config <file>     config file (default ./resident.config.json when present)
  -e, --extensions <dir>  extensions folder (default ./extensions)
  -f, --filters <dir>     filters folder (default ./filters)
  -m, --mode <mode>       run every extension in this mode: inprocess, worker, fastcgi, cgi
                          (default: the config's "mode" and "extensions.<name>.mode")
  -w, --workers <n|auto>  run n server processes (node:cluster; auto = one per core); default 0 = this process
  -h, --help              show this help

Signals (serve): SIGTERM/SIGINT drain and stop, SIGHUP reloads every extension (one process at a
time with --workers), SIGUSR1 reopens the log file.

Options for dev: those of serve, and
  -q, --quiet <ms>        how long a file must stay unchanged before it is rebuilt (default 25ms)

Options for fcgi-worker: -c, -e, -f as for serve, and
  -l, --listen <addr>     unix:/path/to.sock or host:port (default: the listening socket on fd 0,
                          as spawn-fcgi and cgi-fcgi -start hand it over)
  --max-requests <n>      exit 0 after n requests, for a process manager to replace (default: never)
  FCGI_WEB_SERVER_ADDRS   comma-separated addresses of web servers allowed to connect over TCP

Options for uwsgi-worker: -c, -e, -f as for serve, and
  -l, --listen <addr>     unix:/path/to.sock or host:port (default: the listening socket on fd 0)

Flags win over $PORT/$HOST, which win over the config file.
Exit codes: 0 stopped cleanly, 1 failed, 2 bad usage or configuration.
`
