package pipeline_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Tests of what SharePoint's import logs and fatal errors decide: errors
// the event stream misses, totalErrors no event names, a log that never
// comes, and a package SharePoint rejects as invalid.

// knobEmulator runs a private Graph emulator with knobs and job faults over
// the stack's Azurite.
func knobEmulator(t *testing.T, k graphemu.Knobs, jf graphemu.JobFaults) *graphemu.Server {
	t.Helper()
	return startEmulator(t, graphemu.Config{Knobs: k, JobFaults: jf})
}

func onlyBatch(t *testing.T, e *itEnv, migID string) *state.Batch {
	t.Helper()
	bs, err := e.st.ListBatches(context.Background(), migID)
	if err != nil || len(bs) != 1 {
		t.Fatalf("batches of %s: %d, %v", migID, len(bs), err)
	}
	return bs[0]
}

// TestImportLogNamesErrorsEventsMissed: an object error SharePoint counts
// and logs but never sends as an event fails its item, named by the log
// that arrives after the final event; the other items carry no doubt.
func TestImportLogNamesErrorsEventsMissed(t *testing.T) {
	emu := knobEmulator(t, graphemu.Knobs{UnsentErrorEvents: 1, LogDelay: time.Second}, graphemu.JobFaults{FailFiles: []string{"zero.bin"}})
	e := newITEnv(t, itOptions{emu: emu})
	m, _ := smallRun(t, e, "log-unsent", graphemu.DefaultContainer().ID, 5, runMode{})
	if m.Status != state.MigrationCompletedWithErrors {
		t.Fatalf("status %s (%s), want completedWithErrors", m.Status, m.Reason)
	}
	b := onlyBatch(t, e, "log-unsent")
	if b.Status != state.BatchCompletedWithErrors || !strings.Contains(b.Reason, "1 of ") || !strings.Contains(b.Reason, "import log") {
		t.Errorf("batch %s: %s", b.Status, b.Reason)
	}
	for p, r := range e.results("log-unsent") {
		switch {
		case p == "empty/zero.bin":
			if r.Outcome != state.OutcomeFailed || !strings.Contains(r.Reason, "simulated object failure") || !strings.Contains(r.Reason, "import log") {
				t.Errorf("%s: %s %q; want failed, named by the import log", p, r.Outcome, r.Reason)
			}
		case r.Outcome == state.OutcomeFailed:
			t.Errorf("%s: failed %q", p, r.Reason)
		case strings.Contains(r.Reason, "did not tie"):
			t.Errorf("%s: %q; the log accounts for it", p, r.Reason)
		}
	}
}

// TestPhantomErrorsReconciledByLog: totalErrors above what the events and
// the log name is reported on the batch, but when the log lists every item
// as processed the batch and migration succeed and no item is in doubt.
func TestPhantomErrorsReconciledByLog(t *testing.T) {
	emu := knobEmulator(t, graphemu.Knobs{PhantomErrors: 2, LogDelay: time.Second}, graphemu.JobFaults{})
	e := newITEnv(t, itOptions{emu: emu})
	m, specs := smallRun(t, e, "log-phantom", graphemu.DefaultContainer().ID, 5, runMode{})
	if m.Status != state.MigrationCompleted {
		t.Fatalf("status %s (%s), want completed", m.Status, m.Reason)
	}
	b := onlyBatch(t, e, "log-phantom")
	if b.Status != state.BatchSucceeded || !strings.Contains(b.Reason, "SharePoint counted 2 errors") || !strings.Contains(b.Reason, "Import-"+b.JobID+"-1.log") {
		t.Errorf("batch %s: %q", b.Status, b.Reason)
	}
	for p, r := range e.results("log-phantom") {
		if strings.Contains(r.Reason, "did not tie") {
			t.Errorf("%s: %q", p, r.Reason)
		}
	}
	e.verifyImport("log-phantom", graphemu.DefaultContainer().ID, specs)
}

// TestImportLogThatNeverComes: when no log appears within ImportLogWait the
// batch finishes on its events alone and says the log could not be read.
func TestImportLogThatNeverComes(t *testing.T) {
	emu := knobEmulator(t, graphemu.Knobs{PhantomErrors: 1, LogDelay: time.Hour}, graphemu.JobFaults{})
	cfg := itConfig()
	cfg.ImportLogWait = 2 * time.Second
	e := newITEnv(t, itOptions{emu: emu, cfg: cfg})
	m, _ := smallRun(t, e, "log-never", graphemu.DefaultContainer().ID, 5, runMode{})
	b := onlyBatch(t, e, "log-never")
	if m.Status != state.MigrationCompletedWithErrors {
		t.Fatalf("status %s (%s), want completedWithErrors; batch %s %q", m.Status, m.Reason, b.Status, b.Reason)
	}
	if !strings.Contains(b.Reason, "1 errors counted by SharePoint (totalErrors) without an error event") || !strings.Contains(b.Reason, "could not be read within 2s") {
		t.Errorf("batch %s: %q", b.Status, b.Reason)
	}
	if r := e.results("log-never")["Ελληνικά/αρχείο.md"]; r.Outcome != state.OutcomeImported || !strings.Contains(r.Reason, "did not tie") {
		t.Errorf("item: %s %q; want imported, in doubt", r.Outcome, r.Reason)
	}
}

// TestInvalidPackageIsNotRestaged: a fatal error by which SharePoint rejects
// the package itself fails the batch on its first attempt, with what to do,
// instead of restaging the same package until the attempts run out.
func TestInvalidPackageIsNotRestaged(t *testing.T) {
	emu := knobEmulator(t, graphemu.Knobs{}, graphemu.JobFaults{})
	emu.AddJobFaults(graphemu.JobFaults{Fatal: "Manifest validation failed: Manifest.xml(3,7): simulated schema violation"})
	e := newITEnv(t, itOptions{emu: emu})
	m, specs := smallRun(t, e, "fatal-invalid", graphemu.DefaultContainer().ID, 5, runMode{})
	if m.Status != state.MigrationFailed {
		t.Fatalf("status %s (%s), want failed", m.Status, m.Reason)
	}
	b := onlyBatch(t, e, "fatal-invalid")
	if b.Status != state.BatchFailed || b.Attempt != 1 || !strings.Contains(b.Reason, "simulated schema violation") || !strings.Contains(b.Reason, "not restaged") {
		t.Errorf("batch %s attempt %d: %q", b.Status, b.Attempt, b.Reason)
	}
	rs := e.results("fatal-invalid")
	for p := range specs {
		if r := rs[p]; r.Outcome != state.OutcomeSkipped && (r.Outcome != state.OutcomeFailed || !strings.Contains(r.Reason, "simulated schema violation")) {
			t.Errorf("%s: %s %q", p, r.Outcome, r.Reason)
		}
	}
	e.assertJobs("fatal-invalid")
}
