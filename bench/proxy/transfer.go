package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ocis-runtime/ocis/bench/internal/benchkit"
	"github.com/ocis-runtime/ocis/pkg/apierr"
	"github.com/ocis-runtime/ocis/services/proxy"
	"github.com/ocis-runtime/ocis/services/storage"
)

// transferTarget is the target for proxy/direct of large uploads
// and downloads.
const transferTarget = 0.8

// side is one way to the storage service for the large transfers.
type side struct {
	name   string
	client *storage.Client
	path   string
	up     []float64 // MB/s per round
	down   []float64
}

// transfers uploads and downloads a file of -size bytes, made by a
// deterministic reader, directly to the storage service and through the
// proxy, in interleaved rounds, and checks every download's SHA-256.
func (b *bench) transfers(ctx context.Context, srv *ocisServer) ([]string, error) {
	size := int64(b.cfg.size)
	dataDir := filepath.Join(b.tmp, "data")
	// The file, its upload in the storage's tmp/ next to the previous
	// version while it is replaced, and some room besides.
	if free, err := freeBytes(dataDir); err != nil {
		return nil, err
	} else if need := 3 * size; free < need {
		line := fmt.Sprintf("large transfers: skipped: %s free on the file system of %s, need about %s (3 x -size %s); pass a smaller -size",
			byteSize(free), dataDir, byteSize(need), b.cfg.size)
		fmt.Fprintln(b.out, line)
		return []string{line}, nil
	}

	// The file is made, and hashed, before anything is timed: the timed
	// loop only moves bytes between memory and the servers. Each
	// download lands in a buffer of its own, hashed once its time is
	// taken.
	src := make([]byte, size)
	if _, err := io.ReadFull(newPattern(size), src); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(src)
	want := hex.EncodeToString(sum[:])
	dst := make([]byte, size)

	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	token, err := login(ctx, hc, srv.url(usersName))
	if err != nil {
		return nil, err
	}
	ctx = withToken(ctx, token)
	var sides []*side
	for _, s := range []struct{ name, base string }{{"direct", srv.url(storage.Name)}, {"proxy", srv.url(proxy.Name)}} {
		c, err := storage.NewClient(s.base, hc)
		if err != nil {
			return nil, err
		}
		sides = append(sides, &side{name: s.name, client: c, path: "bench/large-" + s.name + ".bin"})
	}
	// Whatever a failed round left behind goes too; the data dir is in
	// the temporary directory, but a -keep run keeps it.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, s := range sides {
			if err := s.client.Delete(dctx, s.path); err != nil && !errors.Is(err, apierr.ErrNotFound) {
				fmt.Fprintf(b.log, "delete %s: %v\n", s.path, err)
			}
		}
	}()

	fmt.Fprintf(b.out, "large transfers: %s per file through one ocis server (the proxy hands them to the storage handler in-process), storage.Client Upload and Download, %d round(s) alternating direct and proxy; MB = 10^6 bytes; from and into memory, hashed after each timed transfer, sha256 %s…\n",
		b.cfg.size, b.cfg.rounds, want[:16])
	for i := range b.cfg.rounds {
		order := []*side{sides[0], sides[1]}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, s := range order {
			up, down, err := transferOnce(ctx, s, src, dst, want)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", i+1, s.name, err)
			}
			s.up, s.down = append(s.up, up), append(s.down, down)
			fmt.Fprintf(b.out, "  round %d %-6s upload %7.1f MB/s  download %7.1f MB/s\n", i+1, s.name, up, down)
		}
	}

	direct, prox := sides[0], sides[1]
	tg := benchkit.Target{Value: transferTarget}
	up := benchkit.SpreadOf(ratios(prox.up, direct.up))
	down := benchkit.SpreadOf(ratios(prox.down, direct.down))
	lines := []string{
		fmt.Sprintf("large upload (%s): MB/s direct %s, proxy %s; proxy/direct %s; %s",
			b.cfg.size, benchkit.SpreadOf(direct.up).Format("%.0f"), benchkit.SpreadOf(prox.up).Format("%.0f"), up.Format("%.2f"), tg.Judge(up)),
		fmt.Sprintf("large download (%s): MB/s direct %s, proxy %s; proxy/direct %s; %s; every sha256 matched, checked after each timed download",
			b.cfg.size, benchkit.SpreadOf(direct.down).Format("%.0f"), benchkit.SpreadOf(prox.down).Format("%.0f"), down.Format("%.2f"), tg.Judge(down)),
	}
	for _, l := range lines {
		fmt.Fprintln(b.out, l)
	}
	return lines, nil
}

// transferOnce uploads src to s.path, downloads it into dst, and only then
// checks size and SHA-256 (the storage's etag is the SHA-256 it computed
// while receiving; the download's is computed here, after its time was
// taken), and deletes the file. It returns the upload's and the
// download's MB/s.
func transferOnce(ctx context.Context, s *side, src, dst []byte, want string) (up, down float64, err error) {
	size := int64(len(src))
	t0 := time.Now()
	fi, _, err := s.client.Upload(ctx, s.path, bytes.NewReader(src), size, storage.UploadOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("upload: %w", err)
	}
	upTook := time.Since(t0)
	if fi.Size != size || fi.ETag != `"`+want+`"` {
		return 0, 0, fmt.Errorf("upload: storage recorded %d bytes with etag %s, want %d bytes with sha256 %s", fi.Size, fi.ETag, size, want)
	}

	clear(dst)
	t0 = time.Now()
	body, _, err := s.client.Download(ctx, s.path, "")
	if err != nil {
		return 0, 0, fmt.Errorf("download: %w", err)
	}
	n, err := io.ReadFull(body, dst)
	if err == nil {
		// Anything past the expected size is an error too.
		var one [1]byte
		if m, _ := body.Read(one[:]); m > 0 {
			err = fmt.Errorf("more than the %d bytes uploaded", size)
		}
	}
	body.Close()
	downTook := time.Since(t0)
	if err != nil {
		return 0, 0, fmt.Errorf("download: after %d bytes: %w", n, err)
	}
	if sum := sha256.Sum256(dst); hex.EncodeToString(sum[:]) != want {
		return 0, 0, fmt.Errorf("download: %d bytes with sha256 %x, want sha256 %s", n, sum, want)
	}

	if err := s.client.Delete(ctx, s.path); err != nil {
		return 0, 0, fmt.Errorf("delete: %w", err)
	}
	return mbps(size, upTook), mbps(size, downTook), nil
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// freeBytes is the space an unprivileged writer may still use on the file
// system of dir.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}
