package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ocis-runtime/ocis/runtime/supervisor"
)

// TestListColumnsExcludedAndStatus checks the table, the JSON fields, an
// excluded service and `ocis status` on a family without activity.
func TestListColumnsExcludedAndStatus(t *testing.T) {
	e := newEnv(t)
	e.vars["OCIS_EXCLUDE_RUN_SERVICES"] = "activity"
	startFamilyIn(t, e)

	code, stdout, stderr := e.run("list")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	header := strings.Fields(strings.SplitN(stdout, "\n", 2)[0])
	want := []string{"SERVICE", "STATE", "HEALTH", "NODE", "ADDRESS", "RESTARTS", "UPTIME", "VERSION", "LAST", "ERROR"}
	if strings.Join(header, " ") != strings.Join(want, " ") {
		t.Errorf("header %q, want %q", header, want)
	}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if len(l) > 100 {
			t.Errorf("line of %d columns, want at most 100: %q", len(l), l)
		}
	}
	if row := strings.Fields(lineWith(stdout, "users")); len(row) != 9 || row[1] != "running" || row[2] != "ready" ||
		row[3] != "test" || row[4] != e.vars["OCIS_USERS_HTTP_ADDR"] || row[7] != "dev" || row[8] != "-" {
		t.Errorf("users row %q", row)
	}
	if row := strings.Fields(lineWith(stdout, "activity")); len(row) < 2 || row[1] != "excluded" {
		t.Errorf("activity row %q, want excluded", row)
	}

	// --json keeps every field, the old ones under their old names.
	code, stdout, _ = e.run("list", "--json")
	var raw []map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); code != 0 || err != nil {
		t.Fatalf("list --json: exit %d, %v", code, err)
	}
	for _, s := range raw {
		for _, k := range []string{"name", "state", "node", "addr", "restarts", "since", "last_error", "version"} {
			if _, ok := s[k]; !ok {
				t.Errorf("%v lacks %q", s["name"], k)
			}
		}
		if s["state"] == "running" && (s["health"] != "ready" || s["debug_addr"] == "") {
			t.Errorf("%v: health %v, debug_addr %v", s["name"], s["health"], s["debug_addr"])
		}
	}

	code, stdout, _ = e.run("status")
	if code != 0 || stdout != "ok: 4 of 4 services running on node test (excluded: activity)\n" {
		t.Errorf("status: exit %d, %q", code, stdout)
	}
	code, _, stderr = e.run("kill", "activity")
	if code != 1 || !strings.Contains(stderr, "excluded") {
		t.Errorf("kill activity: exit %d, %q; want 1 saying it is excluded", code, stderr)
	}
	if code, stdout, _ := e.run("kill", "storage"); code != 0 || stdout != "storage: stopped\n" {
		t.Errorf("kill storage: exit %d, %q", code, stdout)
	}
	code, stdout, stderr = e.run("status")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "ocis: not ok: 3 of 4 services running") || !strings.Contains(stderr, "storage stopped") {
		t.Errorf("status with storage stopped: exit %d, %q %q", code, stdout, stderr)
	}
	if st := e.status("storage"); st.State != supervisor.StateStopped || st.Health != "" {
		t.Errorf("stopped storage: %+v", st)
	}
}
