package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

// ensureTools installs nginx and wrk with apt-get when either is missing.
func ensureTools(ctx context.Context, log io.Writer) error {
	return benchkit.EnsureDebian(ctx, log, []string{"nginx", "wrk"}, []string{"nginx-light", "wrk"})
}

// nginxConf is a reverse proxy in front of one upstream, tuned as an
// operator would for this job: keep-alive to the upstream, HTTP/1.1,
// buffering on (the default). Every path it writes is under its prefix
// directory, none under /var.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`# Written by bench/proxy.
daemon off;
master_process on;
worker_processes {{.Workers}};
{{if .Root}}user root root;
{{end}}pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;
    client_max_body_size 0;

    upstream storage {
        server {{.Upstream}};
        keepalive 64;
    }

    server {
        listen {{.Listen}};
        location / {
            proxy_pass http://storage;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`))

// nginxSetup is what the configuration is written from.
type nginxSetup struct {
	Dir      string
	Workers  int
	Listen   string
	Upstream string
	// Root lets the workers run as root: they must reach the temporary
	// directory, which only its owner may enter.
	Root bool
}

// startNginx writes the configuration into its own directory and starts
// nginx in the foreground on listen, in front of upstream.
func (b *bench) startNginx(listen, upstream string) (*benchkit.Child, error) {
	dir := filepath.Join(b.tmp, "nginx")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var conf bytes.Buffer
	setup := nginxSetup{Dir: dir, Workers: b.cfg.nginxWorkers, Listen: listen, Upstream: upstream, Root: os.Geteuid() == 0}
	if err := nginxConf.Execute(&conf, setup); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	bin := benchkit.LookTool("nginx")
	if bin == "" {
		return nil, errors.New("nginx not found")
	}
	// -e sends the errors of the start, before the configuration is read,
	// to the directory too, not to /var/log/nginx.
	cmd := exec.Command(bin, "-e", filepath.Join(dir, "error.log"), "-p", dir+"/", "-c", confPath)
	cmd.Env = b.env
	return b.kids.Start("nginx", cmd)
}
