package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBashCompletion sources `ocis completion bash` in bash and completes
// commands, services, flags and service arguments.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	e := newEnv(t)
	code, script, stderr := e.run("completion", "bash")
	if code != 0 {
		t.Fatalf("ocis completion bash: exit %d: %s", code, stderr)
	}
	path := filepath.Join(t.TempDir(), "ocis.bash")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ line, want string }{
		{"ocis sto", "storage"},
		{"ocis re", "reload restart"},
		{"ocis storage server --qu", "--quota"},
		{"ocis server --storage.qu", "--storage.quota"},
		{"ocis kill --node n1 us", "users"},
		{"ocis completion ", ""},
	}
	for _, tt := range tests {
		cmd := exec.Command("bash", "-c", `source "$1"; read -ra COMP_WORDS <<< "$2"; [[ "$2" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _ocis; echo "${COMPREPLY[*]}"`, "bash", path, tt.line)
		out, err := cmd.CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tt.want {
			t.Errorf("complete %q = %q (%v), want %q", tt.line, got, err, tt.want)
		}
	}
	code, zsh, _ := e.run("completion", "zsh")
	if code != 0 || !strings.HasPrefix(zsh, "#compdef ocis") || !strings.Contains(zsh, "--storage.quota") {
		t.Errorf("ocis completion zsh: exit %d, %.80q", code, zsh)
	}
	if code, _, _ := e.run("completion", "fish"); code != 2 {
		t.Errorf("ocis completion fish: exit %d, want 2", code)
	}
}
