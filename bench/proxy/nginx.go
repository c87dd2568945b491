package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
)

// nginxPackages are the Debian packages that bring the tools the small GET
// benchmark runs.
var nginxPackages = []string{"nginx-light", "wrk"}

// ensureTools installs nginx and wrk with apt-get when either is missing.
func ensureTools(ctx context.Context, log io.Writer) error {
	if lookNginx() != "" && lookPath("wrk") != "" {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("nginx or wrk is missing and installing them needs root: apt-get install -y %s", strings.Join(nginxPackages, " "))
	}
	install := func() ([]byte, error) {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ictx, "apt-get", append([]string{"install", "-y"}, nginxPackages...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	fmt.Fprintf(log, "installing %s with apt-get\n", strings.Join(nginxPackages, " "))
	if out, err := install(); err != nil {
		// A fresh container has no package lists yet.
		fmt.Fprintf(log, "apt-get install failed (%v), running apt-get update first\n", err)
		uctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if uout, uerr := exec.CommandContext(uctx, "apt-get", "update").CombinedOutput(); uerr != nil {
			return fmt.Errorf("apt-get update: %w\n%s\n(install output:\n%s)", uerr, uout, out)
		}
		if out, err := install(); err != nil {
			return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(nginxPackages, " "), err, out)
		}
	}
	if lookNginx() == "" || lookPath("wrk") == "" {
		return errors.New("apt-get installed nginx-light and wrk, but nginx or wrk is still not found")
	}
	return nil
}

func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// lookNginx finds nginx in PATH or in /usr/sbin, which is not in every
// user's PATH.
func lookNginx() string {
	if p := lookPath("nginx"); p != "" {
		return p
	}
	if fi, err := os.Stat("/usr/sbin/nginx"); err == nil && !fi.IsDir() {
		return "/usr/sbin/nginx"
	}
	return ""
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
	bin := lookNginx()
	if bin == "" {
		return nil, errors.New("nginx not found")
	}
	// -e sends the errors of the start, before the configuration is read,
	// to the directory too, not to /var/log/nginx.
	cmd := exec.Command(bin, "-e", filepath.Join(dir, "error.log"), "-p", dir+"/", "-c", confPath)
	cmd.Env = b.env
	return b.kids.Start("nginx", cmd)
}
