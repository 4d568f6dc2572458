package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonClientInstalled installs clients/python with pip into a fresh venv,
// offline (--no-index, --no-build-isolation: nothing but the tree and the standard
// library), and runs the client's tests from a copy of them, so that they import
// the installed package and not the files beside them.
func TestPythonClientInstalled(t *testing.T) {
	py := python3(t)
	dir := t.TempDir()
	venv := filepath.Join(dir, "venv")
	run := func(cwd string, env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = cwd
		cmd.Env = append(exec.Command("true").Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// Debian: python3-venv gives the venv its pip (ensurepip).
	run(dir, nil, py, "-m", "venv", venv)
	src, err := filepath.Abs(pythonDir)
	if err != nil {
		t.Fatal(err)
	}
	vpy := filepath.Join(venv, "bin", "python")
	run(dir, []string{"PIP_NO_INDEX=1", "PIP_DISABLE_PIP_VERSION_CHECK=1"}, vpy, "-m", "pip", "install", "--no-index", "--no-build-isolation", src)

	tests := filepath.Join(dir, "tests")
	if err := os.Mkdir(tests, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(src, "test_*.py"))
	if len(files) == 0 {
		t.Fatalf("no test_*.py in %s", src)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tests, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, mod := range []string{"hawk_client", "hawk_tls", "hawk_upload"} {
		where := strings.TrimSpace(run(tests, nil, vpy, "-c", "import "+mod+"; print("+mod+".__file__)"))
		if !strings.HasPrefix(where, venv) || !strings.Contains(where, "site-packages") {
			t.Fatalf("%s imported from %s, want the venv's site-packages", mod, where)
		}
	}

	s := startServer(t, bin.serverV1, "-uploads.enabled=true")
	repo, _ := filepath.Abs("../..")
	env := append(pythonEnv(s), "HAWK_REPO_ROOT="+repo)
	cmd := exec.Command(vpy, "-m", "unittest", "-v", "test_hawk_client_upload", "test_hawk_client.GoldenTest", "test_hawk_client.ServerTest", "test_hawk_client.FakeServerTest")
	cmd.Dir = tests
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil || !strings.Contains(text, "\nOK") || strings.Contains(text, "skipped") {
		t.Fatalf("the installed package's tests: %v\n%s", err, text)
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "Ran ") {
			t.Logf("installed package: %s", l)
		}
	}
}
