package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ocis-runtime/ocis/pkg/auth"
	"github.com/ocis-runtime/ocis/pkg/service"
	"github.com/ocis-runtime/ocis/pkg/transport"
)

const testSecret = "storage-test-secret-0123456789abcdef"

// testEnv is the whole stack in process, the way Run builds it but with a
// nop logger and a private registry.
type testEnv struct {
	dir    string
	keys   *auth.Keys
	files  *files
	srv    *httptest.Server
	client *Client
}

func newTestEnv(t *testing.T, quota int64) *testEnv {
	t.Helper()
	dir := t.TempDir()
	keys, err := auth.NewKeys(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.close() })
	d, err := openDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.close() })
	f := newFiles(st, d, quota, nil)
	if _, err := f.recover(); err != nil {
		t.Fatal(err)
	}
	base := service.NewBase(Descriptor(), true)
	endpoints := MakeEndpoints(f, service.Chain(log.NewNopLogger(), prometheus.NewRegistry(), Name, &base))
	srv := httptest.NewServer(NewHTTPHandler(endpoints, log.NewNopLogger(), keys))
	// Registered after the store's cleanup, so it runs first: the server
	// stops before the store closes under it.
	t.Cleanup(srv.Close)
	client, err := NewClient(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{dir: dir, keys: keys, files: f, srv: srv, client: client}
}

// token signs a token for user.
func (e *testEnv) token(t *testing.T, user string) string {
	t.Helper()
	token, _, err := e.keys.Sign(auth.Identity{ID: user, Name: user}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// as returns a context in which the client acts for user.
func (e *testEnv) as(t *testing.T, user string) context.Context {
	t.Helper()
	return transport.WithBearer(context.Background(), e.token(t, user))
}

// record is the metadata of p in user's tree, the zero record when none.
func (e *testEnv) record(t *testing.T, user, p string) record {
	t.Helper()
	r, _, err := e.files.store.get(user, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// answer is a raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// code is the error kind of a JSON error body, or "" when there is none.
func (a answer) code() string {
	var eb struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(a.body, &eb)
	return eb.Error.Code
}

// do sends a raw request for rawPath (escaped as given) as user ("" for no
// token).
func (e *testEnv) do(t *testing.T, method, rawPath, user string, body io.Reader, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+rawPath, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(t, user))
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// upload stores data at p for user through the client.
func (e *testEnv) upload(t *testing.T, user, p string, data []byte) FileInfo {
	t.Helper()
	fi, _, err := e.client.Upload(e.as(t, user), p, bytes.NewReader(data), int64(len(data)), UploadOptions{})
	if err != nil {
		t.Fatalf("upload %s for %s: %v", p, user, err)
	}
	return fi
}

// download reads the whole file at p for user through the client.
func (e *testEnv) download(t *testing.T, user, p string) ([]byte, DownloadInfo) {
	t.Helper()
	rc, info, err := e.client.Download(e.as(t, user), p, "")
	if err != nil {
		t.Fatalf("download %s for %s: %v", p, user, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

// tmpEntries lists what is left in tmp/.
func (e *testEnv) tmpEntries(t *testing.T) []string {
	t.Helper()
	return dirNames(t, filepath.Join(e.dir, "tmp"))
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// etagOf is the entity tag the service gives data.
func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// pseudoRandom returns n bytes that differ with seed.
func pseudoRandom(n int, seed uint64) []byte {
	b := make([]byte, n)
	g := generator{state: seed | 1, remaining: int64(n)}
	_, _ = io.ReadFull(&g, b)
	return b
}

// generator is a reader of remaining pseudo-random bytes that holds no
// more than its state in memory; onRead, when set, sees each chunk.
type generator struct {
	state     uint64
	remaining int64
	onRead    func(p []byte)
}

func (g *generator) Read(p []byte) (int, error) {
	if g.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.remaining {
		p = p[:g.remaining]
	}
	for i := range p {
		// xorshift64
		g.state ^= g.state << 13
		g.state ^= g.state >> 7
		g.state ^= g.state << 17
		p[i] = byte(g.state)
	}
	g.remaining -= int64(len(p))
	if g.onRead != nil {
		g.onRead(p)
	}
	return len(p), nil
}
