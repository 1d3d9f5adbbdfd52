package stack

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var npmMu sync.Mutex // serialises installs started from one process

// NodeDir is where the pinned Node tools live.
func NodeDir(root string) string { return filepath.Join(root, "infra", "local") }

// EnsureNodeTools runs `npm ci` in infra/local when its node_modules lacks
// the pinned tools, so a fresh clone needs no manual step.
func EnsureNodeTools(ctx context.Context, root string, log *slog.Logger) error {
	npmMu.Lock()
	defer npmMu.Unlock()
	dir := NodeDir(root)
	need := []string{"node_modules/azurite/package.json", "node_modules/rhea/package.json", "node_modules/playwright-core/package.json"}
	missing := false
	for _, n := range need {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	log.Info("installing pinned Node tools", "dir", dir)
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("stack: npm ci in %s: %w\n%s", dir, err, out.String())
	}
	return nil
}
