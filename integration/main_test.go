package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// sluiceBin is the binary under test, built once per test binary.
var sluiceBin string

// TestMain builds cmd/sluice into a temporary folder. SLUICE_TEST_RACE=1
// builds it with the race detector, so the processes the tests start
// report data races in their log (and exit 66 on one).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	args := []string{"build", "-o", sluiceBin}
	if os.Getenv("SLUICE_TEST_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "../cmd/sluice")
	cmd := exec.Command("go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building sluice: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
